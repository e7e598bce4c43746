//go:build linux

package transport_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// With HalfClose, a peer's end of stream read by a caller waiting in Recv
// (the reader role's leader) ends reading, not the session: the values come
// first, then ErrPeerClosed, and output still reaches the peer.
func TestHalfCloseSeenByALeadingCaller(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()
	peer, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	require.NoError(t, err)
	defer peer.Close()
	nc, err := ln.AcceptUnix()
	require.NoError(t, err)

	s := newSession(cfg{HalfClose: true, IdleResume: time.Hour}) // callers lead once they hold the role
	require.NoError(t, s.Start(ctx, nc))
	// Warm up until a caller holds the role (the loop reads at first).
	for range 3 {
		go func() {
			time.Sleep(5 * time.Millisecond)
			_, _ = peer.Write(lenmsg.Append(nil, []byte("ping")))
		}()
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "ping", v)
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		_, _ = peer.Write(lenmsg.Append(nil, []byte("last")))
		_ = peer.CloseWrite()
	}()
	v, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "last", v)
	_, err = s.Recv(ctx)
	require.ErrorIs(t, err, transport.ErrPeerClosed)
	require.Equal(t, transport.RunstateRunning, s.State(), "still running after a half-close")

	require.NoError(t, send(ctx, s, "answer"))
	require.NoError(t, s.Disconnect(ctx))
	got, err := readMsg(peer)
	require.NoError(t, err)
	require.Equal(t, "answer", got)
}
