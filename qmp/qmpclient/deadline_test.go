package qmpclient

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/transport"
)

// Every blocking call of the Client returns once its context ends, however
// wedged the peer: here QEMU itself, stopped with SIGSTOP. (qmptest_test.go
// holds the same checks against a frozen qmptest server.)

// stopQEMU freezes QEMU with SIGSTOP until the test ends.
func stopQEMU(t *testing.T, pid int) {
	t.Helper()
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
}

// hang is the bound past which a call that should end with its context
// counts as hung: generous, not a measure of speed.
const hang = 20 * time.Second

// returnsWithin runs f and fails the test if it has not returned within
// hang.
func returnsWithin[T any](t *testing.T, what string, f func() T) T {
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

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// fillOutput queues two 2 MiB commands from their own goroutines: the
// write loop is stuck writing the first, the second holds the pending
// output beyond its limit. Cancel the returned context and read errc twice.
func fillOutput(t *testing.T, c *Client) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Execute(ctx, "human-monitor-command",
				map[string]string{"command-line": "echo " + strings.Repeat("x", 2<<20)})
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond) // in this order
	}
	return cancel, errc
}

func TestExecuteHonoursContextWhileQEMUIsStopped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, cmd := qemuProcess(t)
	c := connectClient(t, addr)
	stopQEMU(t, cmd.Process.Pid)
	cancelBig, big := fillOutput(t, c)

	err := returnsWithin(t, "Execute", func() error {
		_, err := c.Execute(shortCtx(t), "query-status", nil)
		return err
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	err = returnsWithin(t, "ExecuteOOB", func() error {
		_, err := c.ExecuteOOB(shortCtx(t), "query-status", nil)
		return err
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	err = returnsWithin(t, "ExecuteWithFiles", func() error {
		_, err := c.ExecuteWithFiles(shortCtx(t), "getfd", map[string]string{"fdname": "x"}, os.Stdin)
		return err
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	err = returnsWithin(t, "WaitEvent", func() error {
		_, err := c.WaitEvent(shortCtx(t), "STOP", nil)
		return err
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)

	cancelBig()
	for range 2 {
		require.ErrorIs(t, returnsWithin(t, "a big execute", func() error { return <-big }), context.Canceled)
	}
	err = returnsWithin(t, "Disconnect", func() error { return c.Disconnect(shortCtx(t)) })
	require.ErrorIs(t, err, transport.ErrFlushAbandoned)
	require.Equal(t, transport.RunstateIdle, c.State())
}

func TestConnectHonoursContextWhileQEMUIsStopped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, cmd := qemuProcess(t)
	// Wait until QEMU listens, then stop it: the kernel still accepts the
	// connection, but no greeting comes.
	connectClient(t, addr).Disconnect(context.Background())
	stopQEMU(t, cmd.Process.Pid)
	c := NewClient(Config{Name: t.Name()})
	err := returnsWithin(t, "Connect", func() error { return c.Connect(shortCtx(t), addr) })
	var ce *transport.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "handshake", ce.Phase)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateIdle, c.State())
}

func TestAcceptHonoursContextWhileQEMUIsStopped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bin := testpeers.QEMUBinary(t)
	sock := filepath.Join(t.TempDir(), "rev.sock")
	c := NewClient(Config{Name: t.Name()})
	require.NoError(t, c.StartServer(context.Background(), "unix:"+sock))
	qemu := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "unix:"+sock)
	qemu.Stderr = os.Stderr
	require.NoError(t, qemu.Start())
	t.Cleanup(func() { _ = qemu.Process.Kill(); _ = qemu.Wait() })
	stopQEMU(t, qemu.Process.Pid)
	// Stopped before or after it connected: either way no greeting comes.
	err := returnsWithin(t, "Accept", func() error { return c.Accept(shortCtx(t)) })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateIdle, c.State())
}

func TestConnectWhileConnectedFailsAtOnce(t *testing.T) {
	// It used to wait for the end of the running connection.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	err := returnsWithin(t, "Connect", func() error { return c.Connect(context.Background(), addr) })
	var se *transport.StateError
	require.True(t, errors.As(err, &se), "%v", err)
	_, err = c.Execute(context.Background(), "query-status", nil)
	require.NoError(t, err, "the first connection is untouched")
	require.NoError(t, c.Disconnect(context.Background()))
}
