package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/ws"
)

// Close ends every relay in about one close timeout, however many clients
// fail to answer the close handshake (a stopped browser, a hostile
// client): before, it closed them one after another, waiting up to a
// second for each.
func TestBridgeCloseWithSilentClients(t *testing.T) {
	const n = 8
	backends := map[string]string{}
	for i := 0; i < n; i++ {
		backends[fmt.Sprint("vm", i)] = newFakeBackend(t).addr()
	}
	base, b := startBridge(t, Config{Backends: backends})
	var clients []*ws.Conn
	for name := range backends {
		c, err := ws.Endpoint{URL: base + "/vm/" + name}.DialWS(context.Background())
		require.NoError(t, err)
		defer c.SetDeadline(time.Unix(1, 0)) // never read: the close frames are not answered
		clients = append(clients, c)
		// The relay is running once the greeting arrives.
		_, err = c.Read(make([]byte, 1))
		require.NoError(t, err)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Duration(n/2) * ws.DefaultCloseTimeout):
		t.Fatalf("Close with %d silent clients still running after %v", n, time.Since(start))
	}
	<-done
	for _, c := range clients {
		_ = c.CloseWithStatus(ws.CloseNormal, "")
	}
}

// runProgram runs the program in-process with args and returns its host
// and a stop function that waits for it.
func runProgram(t *testing.T, args ...string) (host string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := newLockedBuffer(), newLockedBuffer()
	code := make(chan int, 1)
	go func() { code <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), out, errOut) }()
	require.Eventually(t, func() bool {
		s := out.String()
		i := strings.Index(s, "://")
		if i < 0 {
			return false
		}
		rest := s[i+3:]
		host = rest[:strings.Index(rest, "/")]
		return true
	}, 20*time.Second, 10*time.Millisecond, "no URL printed; stderr: %s", errOut.String())
	stop = func() int { cancel(); return <-code }
	t.Cleanup(func() { stop() })
	return host, sync.OnceValue(stop)
}

// The program's HTTP server does not let a client hold connections: a
// request head that never ends and a kept-alive connection that sends no
// next request are closed (the second was held forever before), and a
// huge request head is refused.
func TestProgramSlowClients(t *testing.T) {
	defer func(h, i time.Duration, m int) { headerTimeout, idleTimeout, maxHeaderBytes = h, i, m }(headerTimeout, idleTimeout, maxHeaderBytes)
	headerTimeout, idleTimeout = 300*time.Millisecond, 300*time.Millisecond
	host, stop := runProgram(t, "--backend", "vm1="+newFakeBackend(t).addr())

	dial := func() net.Conn {
		nc, err := net.Dial("tcp", host)
		require.NoError(t, err)
		require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
		return nc
	}
	closedByServer := func(nc net.Conn, r io.Reader) {
		t.Helper()
		_, err := io.Copy(io.Discard, r)
		require.NoError(t, err, "the server kept the connection")
		nc.Close()
	}

	slow := dial()
	_, err := io.WriteString(slow, "GET /backends HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)
	closedByServer(slow, slow)

	kept := dial()
	_, err = io.WriteString(kept, "GET /backends HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(kept)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	closedByServer(kept, br)

	huge := dial()
	defer huge.Close()
	_, err = io.WriteString(huge, "GET /backends HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 200<<10)+"\r\n\r\n")
	require.NoError(t, err)
	resp, err = http.ReadResponse(bufio.NewReader(huge), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)

	require.Equal(t, 0, stop())
}
