package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wirereactor/wirereactor/action"
)

// ErrServerClosed is returned by Server.Serve after Shutdown or Close.
var ErrServerClosed = errors.New("transport: server closed")

// DefaultFlushTimeout bounds how long a Server waits for a finished
// connection's output to be written.
const DefaultFlushTimeout = 5 * time.Second

// DefaultMaxConns is the number of connections a Server serves at once
// when Server.MaxConns is zero.
const DefaultMaxConns = 1024

// DefaultTLSHandshakeTimeout bounds a connection's TLS handshake when
// Server.TLSHandshakeTimeout is zero.
const DefaultTLSHandshakeTimeout = 10 * time.Second

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
	// MaxConns caps the connections served at once: one accepted beyond
	// it is closed at once and counted in Stats().Refused. Zero means
	// DefaultMaxConns; negative means no cap.
	MaxConns int
	// TLSHandshakeTimeout bounds the TLS handshake of each connection
	// that has one (any net.Conn with HandshakeContext, such as the
	// *tls.Conn of a tcp.Endpoint with TLS): a peer that never starts or
	// never finishes it is closed and counted in Stats().HandshakeFailed,
	// without holding a goroutine forever. Zero means
	// DefaultTLSHandshakeTimeout; negative means no limit (Shutdown still
	// ends the wait). Config.Handshake, the protocol's own opening, is not
	// bounded here: a person typing at a QMP monitor may take minutes.
	TLSHandshakeTimeout time.Duration
	// IdleTimeout, if positive, closes a connection that neither received
	// nor queued a byte for that long, counted in Stats().IdleClosed: a
	// Handle computing a reply for longer sees its connection closed, so
	// set it above the longest command. Zero,
	// the default, means no limit: QMP monitors sit idle for hours waiting
	// for events.
	IdleTimeout time.Duration

	mu        sync.Mutex
	started   bool
	closed    bool
	listeners map[net.Listener]struct{}
	active    map[*Session[T, M]]struct{}
	served    int
	stats     ServerStats
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

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil && transientAcceptError(err) {
			// Out of descriptors, or a connection gone before it was
			// accepted: wait a little and accept again (as net/http
			// does) rather than end every connection.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.logger().Warn("accept failed; retrying", "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
				continue
			case <-srv.handleCtx.Done():
				t.Stop()
				// Shutdown closed ln: the next Accept ends the loop.
				continue
			}
		}
		backoff = 0
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

// transientAcceptError reports whether an Accept error is worth retrying:
// the process or system out of descriptors or buffers, or a connection
// aborted or reset before it was accepted.
func transientAcceptError(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (srv *Server[T, M]) serveConn(nc net.Conn) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return false
	}
	limit := srv.MaxConns
	if limit == 0 {
		limit = DefaultMaxConns
	}
	if limit > 0 && len(srv.active) >= limit {
		srv.stats.Refused++
		srv.logger().Debug("connection refused: at MaxConns", "peer", nc.RemoteAddr(), "limit", limit)
		return false
	}
	srv.served++
	srv.stats.Accepted++
	cfg := srv.Config
	if cfg.Name != "" {
		cfg.Name = fmt.Sprintf("%s#%d", cfg.Name, srv.served)
	}
	var idle *idleWatch
	if srv.IdleTimeout > 0 {
		idle = newIdleWatch(&cfg, srv.IdleTimeout)
	}
	s := New(cfg)
	srv.active[s] = struct{}{}
	srv.conns.Add(1)
	go srv.run(s, nc, idle)
	return true
}

func (srv *Server[T, M]) logger() *slog.Logger {
	if srv.Config.Logger != nil {
		return srv.Config.Logger
	}
	return slog.Default()
}

// tlsHandshaker is a connection with a TLS handshake to run (*tls.Conn),
// without importing crypto/tls.
type tlsHandshaker interface {
	HandshakeContext(ctx context.Context) error
}

// handshakeTLS runs nc's TLS handshake, if it has one, within
// TLSHandshakeTimeout.
func (srv *Server[T, M]) handshakeTLS(nc net.Conn) error {
	hs, ok := nc.(tlsHandshaker)
	if !ok {
		return nil
	}
	ctx := srv.handleCtx
	timeout := srv.TLSHandshakeTimeout
	if timeout == 0 {
		timeout = DefaultTLSHandshakeTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := hs.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil && srv.handleCtx.Err() == nil {
			return fmt.Errorf("transport: TLS handshake not done within %v: %w", timeout, err)
		}
		return fmt.Errorf("transport: TLS handshake: %w", err)
	}
	return nil
}

func (srv *Server[T, M]) count(f func(st *ServerStats)) {
	srv.mu.Lock()
	f(&srv.stats)
	srv.mu.Unlock()
}

func (srv *Server[T, M]) run(s *Session[T, M], nc net.Conn, idle *idleWatch) {
	defer srv.conns.Done()
	defer func() {
		srv.mu.Lock()
		delete(srv.active, s)
		srv.mu.Unlock()
	}()
	if err := srv.handshakeTLS(nc); err != nil {
		nc.Close()
		srv.count(func(st *ServerStats) { st.HandshakeFailed++ })
		s.log.Debug("connection not established", "peer", nc.RemoteAddr(), "err", err)
		return
	}
	if idle != nil {
		idle.start(nc)
		defer func() {
			if idle.stop() {
				srv.count(func(st *ServerStats) { st.IdleClosed++ })
			}
		}()
	}
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

// ServerStats counts what a Server did with the connections it accepted.
type ServerStats struct {
	// Active is the number of connections being served now.
	Active int
	// Accepted counts the connections served (each got a Session).
	Accepted uint64
	// Refused counts the connections closed at once because MaxConns
	// were being served.
	Refused uint64
	// HandshakeFailed counts the connections whose TLS handshake failed
	// or did not finish within TLSHandshakeTimeout.
	HandshakeFailed uint64
	// IdleClosed counts the connections closed by IdleTimeout.
	IdleClosed uint64
}

// Stats returns the server's counters.
func (srv *Server[T, M]) Stats() ServerStats {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	st := srv.stats
	st.Active = len(srv.active)
	return st
}

// idleWatch closes a connection that neither received nor queued a byte
// for its timeout. Activity is seen through the session's OnInbound and
// OnOutbound hooks (an atomic store each), so the connection is not
// wrapped and keeps its direct write path.
type idleWatch struct {
	timeout time.Duration
	last    atomic.Int64 // UnixNano of the last activity
	mu      sync.Mutex
	timer   *time.Timer
	nc      net.Conn
	fired   bool
}

// newIdleWatch chains the watch into cfg's hooks.
func newIdleWatch[T any, M action.Machine[T]](cfg *Config[T, M], timeout time.Duration) *idleWatch {
	w := &idleWatch{timeout: timeout}
	touch := func() { w.last.Store(time.Now().UnixNano()) }
	in, out := cfg.OnInbound, cfg.OnOutbound
	cfg.OnInbound = func(p []byte) {
		touch()
		if in != nil {
			in(p)
		}
	}
	cfg.OnOutbound = func(p []byte) {
		touch()
		if out != nil {
			out(p)
		}
	}
	return w
}

func (w *idleWatch) start(nc net.Conn) {
	w.last.Store(time.Now().UnixNano())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nc = nc
	w.timer = time.AfterFunc(w.timeout, w.check)
}

func (w *idleWatch) check() {
	quiet := time.Since(time.Unix(0, w.last.Load()))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.nc == nil {
		return // stopped
	}
	if quiet < w.timeout {
		w.timer.Reset(w.timeout - quiet)
		return
	}
	w.fired = true
	w.nc.Close()
}

// stop ends the watch and reports whether it closed the connection.
func (w *idleWatch) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
	w.nc = nil
	return w.fired
}
