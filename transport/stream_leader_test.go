package transport_test

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// One goroutine streams into a session and then waits on it, in turns (the
// bulk benchmark's pattern). A caller that read much of a stream hands the
// reader role back to the read loop instead of leaving it free, so the
// stream is read while that goroutine is busy sending: with the loop's idle
// resumption disabled, leaving it free would stall the sender for good.
func TestStreamReadWhileTheLastWaiterIsBusy(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	cnc, err := net.Dial("unix", path)
	require.NoError(t, err)
	snc, err := ln.Accept()
	require.NoError(t, err)

	cli := newSession(cfg{MaxPendingOutput: 64 << 10, IdleResume: time.Hour})
	srv := newSession(cfg{IdleResume: time.Hour})
	require.NoError(t, cli.Start(ctx, cnc))
	require.NoError(t, srv.Start(ctx, snc))
	payload := string(bytes.Repeat([]byte("x"), 32<<10))
	for round := range 5 {
		// 2 MiB: far more than the socket buffers and MaxPendingOutput.
		for i := range 64 {
			require.NoError(t, cli.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(payload)) }),
				"round %d, message %d: the sender stalled", round, i)
		}
		for range 64 {
			v, err := srv.Recv(ctx)
			require.NoError(t, err)
			require.Len(t, v, len(payload))
		}
	}
	require.NoError(t, cli.Disconnect(ctx))
	if err := srv.Disconnect(ctx); err != nil {
		require.ErrorIs(t, err, transport.ErrPeerClosed)
	}
}
