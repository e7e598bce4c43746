package tcp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
	"github.com/wirereactor/wirereactor/transport/tcp"
)

// listenAndConnect runs StartServer, Connect and Accept and returns the
// server and client sessions.
func listenAndConnect(t *testing.T, server tcp.Endpoint, client tcp.Endpoint) (*transporttest.Session, *transporttest.Session) {
	t.Helper()
	ctx := transporttest.Context(t)
	srv, cli := transporttest.NewSession(true), transporttest.NewSession(false)
	ln, err := server.Listen(ctx)
	require.NoError(t, err)
	client.Address = ln.Addr().String()
	transporttest.Connect(t, ctx, srv, cli, ln, client)
	return srv, cli
}

func TestSessionOverTCP(t *testing.T) {
	serverTLS, clientTLS, err := testcert.New()
	require.NoError(t, err)
	tests := []struct {
		name           string
		server, client tcp.Endpoint
	}{
		{"plain", tcp.Endpoint{Address: "127.0.0.1:0"}, tcp.Endpoint{}},
		{"nagle, no keepalive", tcp.Endpoint{Address: "127.0.0.1:0", Delay: true, KeepAlive: -1}, tcp.Endpoint{Delay: true, KeepAlive: -1}},
		{"tls", tcp.Endpoint{Address: "127.0.0.1:0", TLS: serverTLS}, tcp.Endpoint{TLS: clientTLS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			ctx := transporttest.Context(t)
			srv, cli := listenAndConnect(t, tt.server, tt.client)
			transporttest.RequireEchoThenCleanClose(t, ctx, srv, cli)
		})
	}
}

func TestTLSVerificationFailure(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx := transporttest.Context(t)
	serverTLS, _, err := testcert.New()
	require.NoError(t, err)
	ln, err := tcp.Endpoint{Address: "127.0.0.1:0", TLS: serverTLS}.Listen(ctx)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Read(make([]byte, 1)) // runs the server handshake
			c.Close()
		}
	}()
	s := transporttest.NewSession(false)
	err = s.Connect(ctx, tcp.Endpoint{Address: ln.Addr().String(), TLS: &tls.Config{}})
	var ce *transport.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "connect", ce.Phase)
	var ue x509.UnknownAuthorityError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, transport.RunstateIdle, s.State())
}

func TestListenTLSWithoutCertificate(t *testing.T) {
	_, err := tcp.Endpoint{Address: "127.0.0.1:0", TLS: &tls.Config{}}.Listen(context.Background())
	require.ErrorContains(t, err, "no certificate")
}

func TestDialCancelled(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := transporttest.NewSession(false)
	err := s.Connect(ctx, tcp.Endpoint{Address: "127.0.0.1:1"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestNetConn(t *testing.T) {
	transporttest.LeakCheck(t)
	serverTLS, clientTLS, err := testcert.New()
	require.NoError(t, err)
	// Only plain TCP: a *tls.Conn is documented to be corrupt after a Write
	// times out, so it cannot pass nettest's timeout tests (the standard
	// library's own tests do not run them on TLS either).
	for _, useTLS := range []bool{false} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				server, client := tcp.Endpoint{Address: "127.0.0.1:0"}, tcp.Endpoint{}
				if useTLS {
					server.TLS, client.TLS = serverTLS, clientTLS
				}
				ln, err := server.Listen(context.Background())
				if err != nil {
					return nil, nil, nil, err
				}
				client.Address = ln.Addr().String()
				return transporttest.MakePipe(ln, func() (net.Conn, error) { return client.Dial(context.Background()) })
			})
		})
	}
}
