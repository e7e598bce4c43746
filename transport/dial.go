package transport

import (
	"context"
	"net"
)

// Dialer opens a client connection. The Endpoints of packages unix, tcp and
// ws implement it; DialFunc adapts a function.
type Dialer interface {
	Dial(ctx context.Context) (net.Conn, error)
}

// ListenOpener opens a listening socket. The Endpoints of packages unix, tcp
// and ws implement it; ListenFunc adapts a function.
type ListenOpener interface {
	Listen(ctx context.Context) (net.Listener, error)
}

// DialFunc adapts a function to Dialer.
type DialFunc func(ctx context.Context) (net.Conn, error)

// Dial calls f.
func (f DialFunc) Dial(ctx context.Context) (net.Conn, error) { return f(ctx) }

// ListenFunc adapts a function to ListenOpener.
type ListenFunc func(ctx context.Context) (net.Listener, error)

// Listen calls f.
func (f ListenFunc) Listen(ctx context.Context) (net.Listener, error) { return f(ctx) }

// acceptContext accepts one connection from ln, closing ln if ctx ends first.
func acceptContext(ctx context.Context, ln net.Listener) (net.Conn, error) {
	done := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-ctx.Done():
			ln.Close()
		case <-done:
		}
	}()
	nc, err := ln.Accept()
	close(done)
	<-watcher
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil && ctx.Err() != nil {
		nc.Close()
		return nil, ctx.Err()
	}
	return nc, err
}
