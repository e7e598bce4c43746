package transport_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/tcp"
)

type echoServer = transport.Server[string, *lenmsg.Machine]

func newEchoServer() *echoServer {
	return &echoServer{Config: cfg{
		Logger:     quiet,
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{Echo: true} },
	}}
}

// serve runs srv on ln until the test ends.
func serve(t *testing.T, srv *echoServer, ln net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-done, transport.ErrServerClosed)
	})
}

// echoes reports whether c answers a message.
func echoes(t *testing.T, c net.Conn, payload string) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(lenmsg.Append(nil, []byte(payload))); err != nil {
		return false
	}
	got, err := readMsg(c)
	return err == nil && got == payload
}

// requireClosedByServer waits for the server's end of c to close.
func requireClosedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}

// Beyond MaxConns a connection is closed at once and counted; a slot
// freed is reused.
func TestServerMaxConns(t *testing.T) {
	leakCheck(t)
	srv := newEchoServer()
	srv.MaxConns = 2
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, srv, ln)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	require.True(t, echoes(t, a, "a"))
	require.True(t, echoes(t, b, "b"))
	third := dial()
	requireClosedByServer(t, third)
	st := srv.Stats()
	require.Equal(t, transport.ServerStats{Active: 2, Accepted: 2, Refused: 1}, st)

	a.Close()
	require.Eventually(t, func() bool { return srv.Sessions() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.True(t, echoes(t, dial(), "c"))
	require.Equal(t, uint64(3), srv.Stats().Accepted)
}

// Connections that never start TLS are closed after TLSHandshakeTimeout
// and counted; before, each held a goroutine and a socket forever.
func TestServerTLSHandshakeTimeout(t *testing.T) {
	leakCheck(t)
	serverTLS, clientTLS, err := testcert.New()
	require.NoError(t, err)
	srv := newEchoServer()
	srv.TLSHandshakeTimeout = 300 * time.Millisecond
	ln, err := tcp.Endpoint{Address: "127.0.0.1:0", TLS: serverTLS}.Listen(context.Background())
	require.NoError(t, err)
	serve(t, srv, ln)

	const silent = 100
	conns := make([]net.Conn, silent)
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		conns[i] = c
	}
	for _, c := range conns {
		requireClosedByServer(t, c)
	}
	require.Eventually(t, func() bool { return srv.Stats().HandshakeFailed == silent }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 0, srv.Sessions())

	// A TLS client is served as before.
	c, err := tcp.Endpoint{Address: ln.Addr().String(), TLS: clientTLS}.Dial(context.Background())
	require.NoError(t, err)
	defer c.Close()
	require.True(t, echoes(t, c, "over TLS"))
	require.IsType(t, &tls.Conn{}, c)
}

// Shutdown ends a TLS handshake in progress even without a timeout.
func TestServerShutdownDuringTLSHandshake(t *testing.T) {
	leakCheck(t)
	serverTLS, _, err := testcert.New()
	require.NoError(t, err)
	srv := newEchoServer()
	srv.TLSHandshakeTimeout = -1
	ln, err := tcp.Endpoint{Address: "127.0.0.1:0", TLS: serverTLS}.Listen(context.Background())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return srv.Sessions() == 1 }, 10*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.ErrorIs(t, <-done, transport.ErrServerClosed)
	require.Equal(t, uint64(1), srv.Stats().HandshakeFailed)
}

// IdleTimeout closes a silent connection and keeps a talking one. By
// default there is none.
func TestServerIdleTimeout(t *testing.T) {
	leakCheck(t)
	const idle = 300 * time.Millisecond
	srv := newEchoServer()
	srv.IdleTimeout = idle
	ln := newPipeListener()
	serve(t, srv, ln)
	ctx := testCtx(t)

	talker, err := ln.Dial(ctx)
	require.NoError(t, err)
	defer talker.Close()
	silent, err := ln.Dial(ctx)
	require.NoError(t, err)
	defer silent.Close()
	start := time.Now()
	for i := 0; i < 24; i++ {
		require.True(t, echoes(t, talker, "still here"), "message %d", i)
		time.Sleep(idle / 6)
	}
	requireClosedByServer(t, silent)
	require.GreaterOrEqual(t, time.Since(start), idle)
	require.True(t, echoes(t, talker, "still here"))
	require.Equal(t, uint64(1), srv.Stats().IdleClosed)
}
