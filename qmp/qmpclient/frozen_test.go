package qmpclient_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transport"
)

// Every blocking call of the Client returns once its context ends against
// a qmptest server that never reads (Freeze), as against a stopped QEMU
// (deadline_test.go).

const hang = 20 * time.Second

func mustReturn[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(hang):
		t.Fatalf("%s still blocked after %v", what, hang)
		panic("unreachable")
	}
}

// noLeaks checks, after every other cleanup (the server's Close), that no
// goroutine outlives the test.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func short(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestExecuteHonoursContextWhileServerIsFrozen(t *testing.T) {
	noLeaks(t)
	s := qmptest.StartUnix(t, qmptest.Config{Freezable: true})
	c := connectFake(t, s)
	s.Freeze()
	defer s.Thaw()

	bigCtx, cancelBig := context.WithCancel(context.Background())
	big := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Execute(bigCtx, "human-monitor-command",
				map[string]string{"command-line": "echo " + strings.Repeat("x", 2<<20)})
			big <- err
		}()
		time.Sleep(100 * time.Millisecond)
	}

	for _, tc := range []struct {
		what string
		call func(ctx context.Context) error
	}{
		{"Execute", func(ctx context.Context) error { _, err := c.Execute(ctx, "query-status", nil); return err }},
		{"ExecuteOOB", func(ctx context.Context) error { _, err := c.ExecuteOOB(ctx, "query-status", nil); return err }},
		{"ExecuteInto", func(ctx context.Context) error { return c.ExecuteInto(ctx, "query-status", nil, nil) }},
		{"ExecuteWithFiles", func(ctx context.Context) error {
			_, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "x"}, os.Stdin)
			return err
		}},
		{"WaitEvent", func(ctx context.Context) error { _, err := c.WaitEvent(ctx, "STOP", nil); return err }},
	} {
		err := mustReturn(t, tc.what, func() error { return tc.call(short(t)) })
		require.ErrorIs(t, err, context.DeadlineExceeded, tc.what)
	}
	cancelBig()
	for range 2 {
		require.ErrorIs(t, mustReturn(t, "a big execute", func() error { return <-big }), context.Canceled)
	}
	err := mustReturn(t, "Disconnect", func() error { return c.Disconnect(short(t)) })
	require.ErrorIs(t, err, transport.ErrFlushAbandoned)
	require.Equal(t, transport.RunstateIdle, c.State())
}

func TestExecuteWithFilesHonoursContextWhileServerIsFrozen(t *testing.T) {
	// Nothing else queued: the descriptor goes out, the reply never comes.
	noLeaks(t)
	s := qmptest.StartUnix(t, qmptest.Config{Freezable: true})
	c := connectFake(t, s)
	s.Freeze()
	err := mustReturn(t, "ExecuteWithFiles", func() error {
		_, err := c.ExecuteWithFiles(short(t), "getfd", map[string]string{"fdname": "x"}, os.Stdin)
		return err
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	s.Thaw()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	_, err = c.Execute(ctx, "closefd", map[string]string{"fdname": "x"})
	require.NoError(t, err, "the abandoned getfd ran once the server thawed")
	require.Equal(t, uint64(1), c.LateReplies())
	require.NoError(t, c.Disconnect(ctx))
}

func TestConnectHonoursContextWhileServerIsFrozen(t *testing.T) {
	noLeaks(t)
	s := qmptest.StartUnix(t, qmptest.Config{Freezable: true})
	s.Freeze()
	defer s.Thaw()
	c := qmpclient.NewClient(qmpclient.Config{Name: t.Name()})
	err := mustReturn(t, "Connect", func() error { return c.Connect(short(t), s.Addr()) })
	var ce *transport.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "handshake", ce.Phase)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateIdle, c.State())
}

func TestAcceptHonoursContextWhileServerIsFrozen(t *testing.T) {
	// Listen mode: the client listens, the (frozen) server connects.
	noLeaks(t)
	s := qmptest.NewServer(qmptest.Config{Freezable: true})
	defer s.Close()
	s.Freeze()
	defer s.Thaw()
	dir, err := os.MkdirTemp("", "qmp")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "rev.sock")
	c := qmpclient.NewClient(qmpclient.Config{Name: t.Name()})
	require.NoError(t, c.StartServer(context.Background(), "unix:"+sock))
	nc, err := net.Dial("unix", sock)
	require.NoError(t, err)
	require.NoError(t, s.ServeConn(nc))
	err = mustReturn(t, "Accept", func() error { return c.Accept(short(t)) })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateIdle, c.State())
}

func TestConcurrentDisconnectHonoursContext(t *testing.T) {
	// A second Disconnect waits for the first, which flushes to a frozen
	// server; the second's context still bounds its wait.
	noLeaks(t)
	s := qmptest.StartUnix(t, qmptest.Config{Freezable: true})
	c := connectFake(t, s)
	s.Freeze()
	defer s.Thaw()
	// Queued for sure once it returns: it gave up waiting for its reply.
	_, err := c.Execute(short(t), "human-monitor-command",
		map[string]string{"command-line": "echo " + strings.Repeat("x", 2<<20)})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	longCtx, cancelLong := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- c.Disconnect(longCtx) }()
	for c.State() != transport.RunstateDisconnecting {
		time.Sleep(time.Millisecond)
	}
	err = mustReturn(t, "the second Disconnect", func() error { return c.Disconnect(short(t)) })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	cancelLong()
	require.ErrorIs(t, mustReturn(t, "the first Disconnect", func() error { return <-first }), transport.ErrFlushAbandoned)
}
