//go:build linux

package trywrite

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	peer, err := ln.AcceptUnix()
	require.NoError(t, err)
	t.Cleanup(func() { peer.Close() })
	return c, peer
}

func TestOnlyForPlainSockets(t *testing.T) {
	c, _ := socketPair(t)
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	type wrapped struct{ *net.UnixConn } // may override Write: never bypassed
	require.NotNil(t, New(c))
	require.Nil(t, New(wrapped{c}))
	require.Nil(t, New(p1))
}

func TestNeverBlocks(t *testing.T) {
	c, peer := socketPair(t)
	require.NoError(t, c.SetWriteBuffer(4<<10))

	w := New(c)
	require.NotNil(t, w)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	// The kernel takes a part and the call returns at once instead of
	// waiting for the peer.
	n := w.Write(body)
	require.Greater(t, n, 0)
	require.Less(t, n, len(body))
	// The buffer is full now: nothing more is taken.
	require.Equal(t, 0, w.Write(body[n:]))
	require.Equal(t, 0, w.Write2(body[n:n+1], body[n+1:]))

	got := make([]byte, n)
	_, err := io.ReadFull(peer, got)
	require.NoError(t, err)
	require.Equal(t, body[:n], got)

	c.Close()
	require.Equal(t, 0, w.Write(body), "a closed stream takes nothing")
}

func TestWrite2GathersInOrder(t *testing.T) {
	c, peer := socketPair(t)
	w := New(c)
	require.Equal(t, 0, w.Write2(nil, nil))
	require.Equal(t, 3, w.Write2([]byte("abc"), nil))
	require.Equal(t, 3, w.Write2(nil, []byte("def")))
	require.Equal(t, 5, w.Write2([]byte("gh"), []byte("ijk")))
	got := make([]byte, 11)
	_, err := io.ReadFull(peer, got)
	require.NoError(t, err)
	require.Equal(t, "abcdefghijk", string(got))
}
