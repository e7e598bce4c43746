// Package tcp provides TCP endpoints for transport sessions: TCP_NODELAY,
// keepalive, and TLS on both sides.
package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// DefaultKeepAlive is the keepalive period used when Endpoint.KeepAlive is
// zero.
const DefaultKeepAlive = 15 * time.Second

// Endpoint is a TCP address. It implements transport.Dialer and
// transport.ListenOpener.
type Endpoint struct {
	// Address is "host:port"; for Listen, ":0" picks a free port.
	Address string
	// TLS, if set, runs TLS over the connection: Dial is a TLS client
	// (ServerName defaults to the host of Address) and completes the
	// handshake before returning; Listen yields TLS server connections
	// whose handshake runs on first use (so a slow client cannot stall
	// Accept): transport.Server bounds it with its TLSHandshakeTimeout;
	// another accept loop should call HandshakeContext with a deadline
	// before reading. The config is cloned, never modified.
	TLS *tls.Config
	// KeepAlive is the TCP keepalive period: zero means DefaultKeepAlive,
	// negative disables keepalive.
	KeepAlive time.Duration
	// Delay re-enables Nagle's algorithm; by default TCP_NODELAY is set, as
	// message protocols want small writes sent at once.
	Delay bool
}

func (e Endpoint) keepAlive() time.Duration {
	if e.KeepAlive == 0 {
		return DefaultKeepAlive
	}
	return e.KeepAlive
}

// Dial connects (and, with TLS, completes the handshake), honouring ctx.
func (e Endpoint) Dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{KeepAlive: e.keepAlive()}
	c, err := d.DialContext(ctx, "tcp", e.Address)
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetNoDelay(!e.Delay); err != nil {
		c.Close()
		return nil, err
	}
	if e.TLS == nil {
		return c, nil
	}
	cfg := e.TLS.Clone()
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		host, _, err := net.SplitHostPort(e.Address)
		if err != nil {
			c.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// Listen opens a listening socket. Accepted connections are *net.TCPConn, or
// *tls.Conn when TLS is set.
func (e Endpoint) Listen(ctx context.Context) (net.Listener, error) {
	if e.TLS != nil && len(e.TLS.Certificates) == 0 && e.TLS.GetCertificate == nil && e.TLS.GetConfigForClient == nil {
		return nil, errors.New("tcp: listen: TLS config has no certificate")
	}
	lc := net.ListenConfig{KeepAlive: e.keepAlive()}
	ln, err := lc.Listen(ctx, "tcp", e.Address)
	if err != nil {
		return nil, err
	}
	l := &listener{Listener: ln, delay: e.Delay}
	if e.TLS != nil {
		l.tls = e.TLS.Clone()
	}
	return l, nil
}

type listener struct {
	net.Listener
	delay bool
	tls   *tls.Config
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetNoDelay(!l.delay); err != nil {
		c.Close()
		return nil, err
	}
	if l.tls != nil {
		return tls.Server(c, l.tls), nil
	}
	return c, nil
}
