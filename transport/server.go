package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/action"
)

// ErrServerClosed is returned by Server.Serve after Shutdown or Close.
var ErrServerClosed = errors.New("transport: server closed")

// DefaultFlushTimeout bounds how long a Server waits for a finished
// connection's output to be written.
const DefaultFlushTimeout = 5 * time.Second

// Server accepts many connections and drives each with its own Session (a
// fresh machine per connection from Config.NewMachine), the shape of a frame
// protocol server. Set the fields, then call Serve; Shutdown or Close (or
// Serve's context) stop it and join every goroutine it started.
type Server[T any, M action.Machine[T]] struct {
	// Config is the template for every session. Name, if set, is suffixed
	// with "#n" per connection.
	Config Config[T, M]
	// Handle serves one connection: it runs in its own goroutine once the
	// session is Running (after Config.Handshake, if any), typically
	// receiving values and answering with Do. When it returns, the session
	// is disconnected (flushing up to FlushTimeout). ctx is cancelled by
	// Shutdown and Close. Nil means: receive and discard values until the
	// session ends (for machines that answer by themselves).
	Handle func(ctx context.Context, s *Session[T, M])
	// FlushTimeout bounds the flush of each finished connection; zero
	// means DefaultFlushTimeout.
	FlushTimeout time.Duration

	mu        sync.Mutex
	started   bool
	closed    bool
	listeners map[net.Listener]struct{}
	active    map[*Session[T, M]]struct{}
	served    int
	handleCtx context.Context // cancelled by Shutdown and Close
	stopHandl context.CancelFunc
	hardCtx   context.Context // cancelled by Close: no more flushing
	stopHard  context.CancelFunc
	conns     sync.WaitGroup
}

func (srv *Server[T, M]) initLocked() {
	if srv.started {
		return
	}
	srv.started = true
	srv.listeners = make(map[net.Listener]struct{})
	srv.active = make(map[*Session[T, M]]struct{})
	srv.handleCtx, srv.stopHandl = context.WithCancel(context.Background())
	srv.hardCtx, srv.stopHard = context.WithCancel(context.Background())
}

// Serve accepts connections from ln until ctx ends, Shutdown or Close is
// called, or ln fails; then it stops the server (as Close does when ctx
// ended or ln failed), waits for every connection to finish, and returns
// ErrServerClosed, ctx's error, or ln's error. ln is closed on return.
func (srv *Server[T, M]) Serve(ctx context.Context, ln net.Listener) error {
	srv.mu.Lock()
	srv.initLocked()
	if srv.closed {
		srv.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	srv.listeners[ln] = struct{}{}
	srv.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()

	for {
		nc, err := ln.Accept()
		if err != nil {
			srv.mu.Lock()
			closed := srv.closed
			delete(srv.listeners, ln)
			srv.mu.Unlock()
			ln.Close()
			if !closed {
				srv.Close()
			}
			srv.conns.Wait()
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case closed:
				return ErrServerClosed
			}
			return fmt.Errorf("transport: accept: %w", err)
		}
		if !srv.serveConn(nc) {
			nc.Close()
		}
	}
}

func (srv *Server[T, M]) serveConn(nc net.Conn) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return false
	}
	srv.served++
	cfg := srv.Config
	if cfg.Name != "" {
		cfg.Name = fmt.Sprintf("%s#%d", cfg.Name, srv.served)
	}
	s := New(cfg)
	srv.active[s] = struct{}{}
	srv.conns.Add(1)
	go srv.run(s, nc)
	return true
}

func (srv *Server[T, M]) run(s *Session[T, M], nc net.Conn) {
	defer srv.conns.Done()
	defer func() {
		srv.mu.Lock()
		delete(srv.active, s)
		srv.mu.Unlock()
	}()
	if err := s.Start(srv.handleCtx, nc); err != nil {
		s.log.Debug("connection not established", "err", err)
		return
	}
	if srv.Handle != nil {
		srv.Handle(srv.handleCtx, s)
	} else {
		for {
			if _, err := s.Recv(srv.handleCtx); err != nil {
				break
			}
		}
	}
	timeout := srv.FlushTimeout
	if timeout <= 0 {
		timeout = DefaultFlushTimeout
	}
	ctx, cancel := context.WithTimeout(srv.hardCtx, timeout)
	defer cancel()
	if err := s.Disconnect(ctx); err != nil && !errors.Is(err, ErrPeerClosed) {
		s.log.Log(ctx, slog.LevelDebug, "connection ended", "cause", err)
	}
}

// Shutdown stops accepting, cancels the handlers' context and waits for
// every connection to finish, flushing their output. If ctx ends first it
// closes the remaining connections at once (as Close), waits for them, and
// returns ctx's error.
func (srv *Server[T, M]) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.initLocked()
	srv.closed = true
	for ln := range srv.listeners {
		ln.Close()
	}
	srv.stopHandl()
	srv.mu.Unlock()

	done := make(chan struct{})
	go func() {
		srv.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		srv.stopHard()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and ends every connection without flushing, then
// waits for them.
func (srv *Server[T, M]) Close() error {
	srv.mu.Lock()
	srv.initLocked()
	srv.stopHard()
	srv.mu.Unlock()
	if err := srv.Shutdown(srv.hardCtx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Sessions returns the number of connections being served.
func (srv *Server[T, M]) Sessions() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.active)
}
