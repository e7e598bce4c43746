//go:build linux

package ws

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
)

var _ transport.TryWriter = (*Conn)(nil)

func TestTryWriteSendsOneFrame(t *testing.T) {
	transporttest.LeakCheck(t)
	client, srv := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	for _, tt := range []struct {
		name     string
		from, to *Conn
	}{{"server (unmasked)", srv, client}, {"client (masked)", client, srv}} {
		t.Run(tt.name, func(t *testing.T) {
			n, pending := tt.from.TryWrite([]byte("hello"))
			require.Equal(t, 5, n)
			require.False(t, pending)
			got := make([]byte, 5)
			_, err := io.ReadFull(tt.to, got)
			require.NoError(t, err)
			require.Equal(t, "hello", string(got))
		})
	}
	n, _ := srv.TryWrite(make([]byte, srv.maxFrame+1))
	require.Zero(t, n, "more than one frame is left to Write")
}

// A frame the kernel takes only part of is committed: TryWrite reports all
// of p taken and pending, and a Write of no bytes sends the rest before
// anything written later.
func TestTryWriteKeepsTheRestOfAFrame(t *testing.T) {
	transporttest.LeakCheck(t)
	client, srv := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	require.NoError(t, srv.nc.(*net.TCPConn).SetWriteBuffer(4<<10))
	body := bytes.Repeat([]byte("0123456789abcdef"), 32<<10) // 512 KiB
	n, pending := srv.TryWrite(body)
	require.Equal(t, len(body), n)
	require.True(t, pending, "the kernel cannot have taken 512 KiB at once")
	// Nothing more goes out until the tail has left.
	n, pending = srv.TryWrite([]byte("x"))
	require.Zero(t, n)
	require.True(t, pending)

	done := make(chan error, 1)
	go func() {
		if _, err := srv.Write(nil); err != nil {
			done <- err
			return
		}
		_, err := srv.Write([]byte("after"))
		done <- err
	}()
	got := make([]byte, len(body)+len("after"))
	_, err := io.ReadFull(client, got)
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.Equal(t, append(body, "after"...), got)
}

// A Write of no bytes sends no frame.
func TestWriteNothingSendsNoFrame(t *testing.T) {
	transporttest.LeakCheck(t)
	client, srv := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	n, err := srv.Write(nil)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = srv.Write([]byte("x"))
	require.NoError(t, err)
	// The first frame the client sees is the one with "x".
	require.NoError(t, client.fill(2))
	require.Equal(t, byte(1), client.rbuf[client.rpos+1]&0x7f)
}
