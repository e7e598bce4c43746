package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const greeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\r\n"

// hostileServer serves one connection with serve on a loopback port and
// returns its address; the connection is closed when the test ends.
func hostileServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns <- c
		defer c.Close()
		serve(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case c := <-conns:
			c.Close()
		default:
		}
		wg.Wait()
	})
	return "tcp:" + ln.Addr().String()
}

// runShellWithin runs the program in process and fails the test if it has
// not returned within limit.
func runShellWithin(t *testing.T, limit time.Duration, stdin io.Reader, stdout io.Writer, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errOut strings.Builder
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, stdin, stdout, &errOut) }()
	select {
	case code := <-done:
		return code, errOut.String()
	case <-time.After(limit):
		cancel()
		select {
		case <-done:
			t.Fatalf("qmp-shell %v still running after %v", args, limit)
		case <-time.After(5 * time.Second):
			t.Fatalf("qmp-shell %v still running after %v, and 5s after its context was cancelled", args, limit)
		}
		return 0, ""
	}
}

// Connecting to a server that misbehaves before QMP starts ends within
// --timeout with an error saying what happened.
func TestConnectHostileServer(t *testing.T) {
	tests := []struct {
		name  string
		serve func(c net.Conn)
		want  string
	}{
		{"greeting never comes", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }, "deadline"},
		{"garbage", func(c net.Conn) {
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n")
			_, _ = io.Copy(io.Discard, c)
		}, "json syntax error"},
		{"endless greeting", func(c net.Conn) {
			_, _ = io.WriteString(c, `{"QMP": {"version": "`)
			chunk := []byte(strings.Repeat("a", 64<<10))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := hostileServer(t, tt.serve)
			var out strings.Builder
			code, errOut := runShellWithin(t, 20*time.Second, strings.NewReader("query-status\n"), &out, "--timeout", "1s", addr)
			require.Equal(t, 1, code)
			require.Contains(t, errOut, tt.want)
			require.Empty(t, out.String())
		})
	}
}

// slowWriter is a terminal that takes a while for each write.
type slowWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(50 * time.Microsecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *slowWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A server that floods events faster than the output takes them does not
// keep the shell from printing replies and finishing: the drain of events
// before a reply takes those waiting, not every event still to come.
func TestEventFloodDoesNotStarveReplies(t *testing.T) {
	addr := hostileServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, greeting)
		var wmu sync.Mutex
		write := func(s string) error {
			wmu.Lock()
			defer wmu.Unlock()
			_, err := io.WriteString(c, s)
			return err
		}
		stop := make(chan struct{})
		var flood sync.WaitGroup
		defer func() { close(stop); c.Close(); flood.Wait() }()
		dec := json.NewDecoder(c)
		for {
			var cmd struct {
				Execute string          `json:"execute"`
				ID      json.RawMessage `json:"id"`
			}
			if dec.Decode(&cmd) != nil {
				return
			}
			if cmd.Execute == "qmp_capabilities" {
				flood.Go(func() {
					ev := `{"event": "BLOCK_JOB_READY", "data": {"device": "j0", "len": 1, "offset": 1, "speed": 0, "type": "mirror"}, "timestamp": {"seconds": 1, "microseconds": 2}}` + "\r\n"
					evs := strings.Repeat(ev, 64)
					for {
						select {
						case <-stop:
							return
						default:
						}
						if write(evs) != nil {
							return
						}
					}
				})
			}
			if write(fmt.Sprintf(`{"return": {"name": "flooded"}, "id": %s}`+"\r\n", cmd.ID)) != nil {
				return
			}
		}
	})
	out := &slowWriter{}
	code, errOut := runShellWithin(t, 30*time.Second, strings.NewReader("query-name\nquery-name\n"), out, addr)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 2, strings.Count(out.String(), `{"return": {"name": "flooded"}}`))
	require.Contains(t, out.String(), "event BLOCK_JOB_READY")
}
