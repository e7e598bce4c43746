// Package transporttest holds what the transport adapters' tests share: a
// goroutine leak check, a bounded test context and sessions running the
// lenmsg test machine.
package transporttest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// LeakCheck fails t if any goroutine is left once the test and the cleanups
// registered after this call have run (cleanups run last-registered first:
// call it first).
func LeakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// Context is cancelled when t ends, or after 20 s so that a hung test fails
// rather than waiting for the test binary's timeout.
func Context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Session is a transport.Session running lenmsg machines.
type Session = transport.Session[string, *lenmsg.Machine]

// NewSession returns an unconnected Session; with echo set its machines send
// every message back.
func NewSession(echo bool) *Session {
	return transport.New(transport.Config[string, *lenmsg.Machine]{
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{Echo: echo} },
	})
}

// Connect makes srv serve ln, connects cli to it through d and waits until
// srv has accepted.
func Connect(t *testing.T, ctx context.Context, srv, cli *Session, ln net.Listener, d transport.Dialer) {
	t.Helper()
	require.NoError(t, srv.StartServer(ctx, transport.ListenFunc(func(context.Context) (net.Listener, error) { return ln, nil })))
	acc := make(chan error, 1)
	go func() { acc <- srv.Accept(ctx) }()
	require.NoError(t, cli.Connect(ctx, d))
	require.NoError(t, <-acc)
}

// RequireEchoThenCleanClose sends messages from cli, small and large,
// requires each to come back unchanged from srv (an echoing session), then
// disconnects cli and requires srv to see the peer close cleanly.
func RequireEchoThenCleanClose(t *testing.T, ctx context.Context, srv, cli *Session) {
	t.Helper()
	for _, msg := range []string{"a", strings.Repeat("b", 300000), "c"} {
		require.NoError(t, cli.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(msg)) }))
		got, err := cli.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, msg, got)
	}
	require.NoError(t, cli.Disconnect(ctx))
	require.NoError(t, srv.WaitState(ctx, transport.RunstateDisconnecting))
	require.ErrorIs(t, srv.Disconnect(ctx), transport.ErrPeerClosed, "a clean close")
}

// MakePipe is a nettest.MakePipe from a listener and a dialer: it connects
// dial's connection to the one ln accepts (finishing the TLS handshake on a
// *tls.Conn, which the client's dial waits for), then closes ln.
func MakePipe(ln net.Listener, dial func() (net.Conn, error)) (c1, c2 net.Conn, stop func(), err error) {
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if tc, ok := c.(*tls.Conn); ok && err == nil {
			_ = tc.Handshake()
		}
		ch <- c
	}()
	c1, err = dial()
	if err != nil {
		return nil, nil, nil, err
	}
	c2 = <-ch
	if c2 == nil {
		c1.Close()
		return nil, nil, nil, errors.New("accept failed")
	}
	return c1, c2, func() { c1.Close(); c2.Close() }, nil
}
