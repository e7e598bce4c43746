package eventloop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/examples/eventloop"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// statusReply is what query-status returns from a running VM.
const statusReply = `{"status": "running", "singlestep": false, "running": true}`

// serve starts a fake QEMU serving many clients at once; stop answers
// without pausing, so query-status keeps its reply whatever the order.
func serve(t testing.TB) string {
	s := qmptest.StartUnix(t, qmptest.Config{MultiClient: true})
	s.Handle("stop", qmptest.Reply(nil))
	return strings.TrimPrefix(s.Addr(), "unix:")
}

// TestEveryReplyReachesItsCaller drives many connections from one goroutine,
// several commands in flight on each, and checks every callback got the
// reply to its own command.
func TestEveryReplyReachesItsCaller(t *testing.T) {
	defer goleak.VerifyNone(t)
	tests := []struct {
		name        string
		conns, cmds int
	}{
		{"one connection", 1, 20},
		{"many connections", 300, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := serve(t)
			l, err := eventloop.New()
			require.NoError(t, err)
			defer l.Close()
			ids := make([]int, tt.conns)
			for i := range ids {
				ids[i], err = l.Dial(path)
				require.NoError(t, err)
			}
			type key struct{ conn, cmd int }
			got := map[key]string{}
			for _, id := range ids {
				for j := range tt.cmds {
					// Alternate commands so a reply handed to the wrong
					// callback shows.
					cmd, want := "query-status", statusReply
					if j%2 == 1 {
						cmd, want = "stop", "{}"
					}
					k := key{id, j}
					require.NoError(t, l.Execute(id, cmd, nil, func(r qmp.Response, err error) {
						require.NoError(t, err)
						require.Nil(t, r.Error)
						require.JSONEq(t, want, string(r.Return))
						_, dup := got[k]
						require.False(t, dup, "second reply for %v", k)
						got[k] = cmd
					}))
				}
			}
			for len(got) < tt.conns*tt.cmds {
				n, err := l.Poll(5000)
				require.NoError(t, err)
				require.NotZero(t, n, "no progress with %d of %d replies", len(got), tt.conns*tt.cmds)
			}
			require.Equal(t, tt.conns, l.Ready())
			require.Equal(t, tt.conns, l.Len())
		})
	}
}

// TestPendingCallbacksFailWhenTheServerGoes closes the server under pending
// commands: every callback hears about it.
func TestPendingCallbacksFailWhenTheServerGoes(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := qmptest.NewServer(qmptest.Config{MultiClient: true})
	path := filepath.Join(t.TempDir(), "qmp.sock")
	require.NoError(t, s.Start(context.Background(), "unix:"+path))
	l, err := eventloop.New()
	require.NoError(t, err)
	defer l.Close()
	id, err := l.Dial(path)
	require.NoError(t, err)
	for l.Ready() == 0 {
		_, err := l.Poll(5000)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	var failed error
	// The server is gone: the command is written (or not) and the
	// connection's end reaches its callback.
	_ = l.Execute(id, "query-status", nil, func(_ qmp.Response, err error) { failed = err })
	for failed == nil {
		_, err := l.Poll(5000)
		require.NoError(t, err)
	}
	require.ErrorIs(t, failed, eventloop.ErrClosed)
	require.Zero(t, l.Len())
}

// TestIdleConnectionEndsWithTheServer: the server closes an idle
// connection; the machine ends with io.EOF and the loop drops the
// connection without tracking the end of stream itself.
func TestIdleConnectionEndsWithTheServer(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := qmptest.NewServer(qmptest.Config{MultiClient: true})
	path := filepath.Join(t.TempDir(), "qmp.sock")
	require.NoError(t, s.Start(context.Background(), "unix:"+path))
	l, err := eventloop.New()
	require.NoError(t, err)
	defer l.Close()
	_, err = l.Dial(path)
	require.NoError(t, err)
	for l.Ready() == 0 {
		_, err := l.Poll(5000)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	for l.Len() > 0 {
		n, err := l.Poll(5000)
		require.NoError(t, err)
		require.NotZero(t, n, "the connection's end never came")
	}
	require.Zero(t, l.Ready())
}

func Example() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "qmp.sock")
	server := qmptest.NewServer(qmptest.Config{MultiClient: true})
	defer server.Close()
	if err := server.Start(context.Background(), "unix:"+path); err != nil {
		panic(err)
	}

	l, _ := eventloop.New()
	defer l.Close()
	const conns = 100
	replies := 0
	for range conns {
		id, err := l.Dial(path)
		if err != nil {
			panic(err)
		}
		l.Execute(id, "query-status", nil, func(r qmp.Response, err error) {
			if err == nil && r.Error == nil {
				replies++
			}
		})
	}
	for replies < conns {
		if _, err := l.Poll(-1); err != nil {
			panic(err)
		}
	}
	fmt.Println(replies, "replies on", l.Len(), "connections, one goroutine")
	// Output: 100 replies on 100 connections, one goroutine
}

func exampleDir() string {
	dir, err := os.MkdirTemp("", "eventloop-example")
	if err != nil {
		panic(err)
	}
	return dir
}
