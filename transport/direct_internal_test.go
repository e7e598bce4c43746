//go:build linux

package transport

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/unix"
)

func TestNewDirectWriterOnlyForPlainSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()
	uc, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	require.NoError(t, err)
	defer uc.Close()
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	type wrapped struct{ *net.UnixConn } // may override Write: never bypassed

	tests := []struct {
		name string
		nc   net.Conn
		want bool
	}{
		{"unix socket", uc, true},
		{"unix.Conn", unix.NewConn(uc, 0), true},
		{"wrapper embedding a socket", wrapped{uc}, false},
		{"pipe", p1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, newDirectWriter(tt.nc) != nil)
		})
	}
}

func TestDirectWriterNeverBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	require.NoError(t, err)
	defer c.Close()
	peer, err := ln.AcceptUnix()
	require.NoError(t, err)
	defer peer.Close()
	require.NoError(t, c.SetWriteBuffer(4<<10))

	d := newDirectWriter(c)
	require.NotNil(t, d)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	// The kernel takes a part and the call returns at once instead of
	// waiting for the peer.
	n := d.write(body)
	require.Greater(t, n, 0)
	require.Less(t, n, len(body))
	// The buffer is full now: nothing more is taken.
	require.Equal(t, 0, d.write(body[n:]))

	got := make([]byte, n)
	_, err = io.ReadFull(peer, got)
	require.NoError(t, err)
	require.Equal(t, body[:n], got)

	c.Close()
	require.Equal(t, 0, d.write(body), "a closed stream takes nothing")
}
