// Package transport drives sans-IO protocol machines (action.Machine) over
// byte streams: a Session owns one connection at a time, with one read loop
// feeding the machine and one write loop carrying out its Send actions
// (started at the first output that needs it), and the qemu.qmp life cycle
// Idle → Connecting → Running → Disconnecting → Idle.
//
// The package knows no protocol and no socket family: subpackages unix, tcp
// and ws provide Endpoints (dial and listen) and connections; anything that
// yields a net.Conn (net.Pipe, a TLS connection, a test fake) can be driven
// with Session.Start.
//
// # Concurrency and backpressure
//
// Every call into the machine happens under the session's lock: the read
// loop's Feed/FeedEOF and the functions passed to Do. The lock is never held
// while blocked on the network, on the application or on buffer space (a
// non-blocking write, below, may run under it).
//
// Output is double-buffered: Send actions are copied into the pending output
// buffer, and the write loop swaps it for a spare buffer and writes it in one
// call, so steady-state writing allocates nothing. When the write loop is
// idle and the stream is a plain TCP or unix socket (*net.TCPConn,
// *net.UnixConn, *unix.Conn; on Linux), the goroutine that ran the machine
// instead makes one non-blocking write(2) of up to 16 KiB of output itself,
// under the lock, saving a wake-up of the write loop per message. Whatever
// the kernel does not take at once is left for the write loop as above, so
// order, limits and error reporting are unchanged. When more than
// Config.MaxPendingOutput bytes wait, the read loop stops reading and Do
// blocks until the writer catches up.
//
// Delivered values wait in a queue read by Recv. When Config.DeliverQueue
// values wait, the read loop stops reading, so the kernel's socket buffers
// fill and the peer is pushed back. Both limits are soft by at most what one
// machine call produces (the output of one read of at most
// Config.ReadBufferSize bytes, or of one Do), so memory stays bounded.
// Delivered values outlive the machine call that produced them (they wait
// in the queue, or Consume passes them on), while the read buffer is reused
// for the next read. So each one is passed through Config.Retain or, when
// that is nil and the machine implements action.Retainer, through the
// machine's Retain, which copies whatever the value aliases.
//
// # How a session ends
//
// The first of these is the root cause, kept and returned by Disconnect
// (and by Recv and Do once the queue is drained): a machine's Error action;
// a read or write error; the peer closing the stream, which is
// ErrPeerClosed (errors.Is io.EOF; so is a machine's Error with io.EOF,
// its clean end after FeedEOF) unless the machine reports a partial
// message from FeedEOF as its own error. Errors caused by the session
// closing the stream itself are never reported. The session then stops at
// once: output still queued is dropped, so a peer that half-closes its
// side after its last request does not get the answers. A clean local
// Disconnect flushes queued output first.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/wirereactor/wirereactor/action"
)

// Defaults for the zero Config.
const (
	DefaultReadBufferSize   = 64 << 10
	DefaultMaxPendingOutput = 1 << 20
	DefaultDeliverQueue     = 128
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

// Config configures a Session. Only NewMachine is required; every other zero
// field means a sane default.
type Config[T any, M action.Machine[T]] struct {
	// NewMachine returns a fresh machine for each connection.
	NewMachine func() M

	// Handshake, if set, runs the protocol's opening exchange (a QMP greeting
	// and qmp_capabilities, say) once the stream is up: the loops are
	// running, the state is Connecting, and Do and Recv may be used. If it
	// returns an error, the session is torn down, returns to Idle, and the
	// connecting call returns a *ConnectError with Phase "handshake". ctx is
	// cancelled by Disconnect and by the connecting call's context.
	Handshake func(ctx context.Context, s *Session[T, M]) error

	// Name identifies the connection in logs.
	Name string
	// Logger receives the session's logs, with attribute session=Name;
	// nil means slog.Default().
	Logger *slog.Logger

	// ReadBufferSize is the largest read loop buffer (default 64 KiB). The
	// buffer starts at 4 KiB, so an idle connection holds little, and
	// doubles after every read that fills it, up to this size.
	ReadBufferSize int
	// MaxPendingOutput is the soft limit of bytes waiting to be written
	// (default 1 MiB); see the package documentation.
	MaxPendingOutput int
	// DeliverQueue is the soft limit of delivered values waiting for Recv
	// (default 128); see the package documentation.
	DeliverQueue int

	// Retain, if set, is applied to every delivered value before it is
	// queued or consumed, under the session's lock. It must return a value
	// that stays valid after the machine's next call: delivered values may
	// alias the machine's input (the read buffer is reused once the machine
	// says WantMore) or its own buffers.
	//
	// When Retain is nil and the machine implements action.Retainer (as
	// reactor.ClientReactor does), the machine's Retain method is used
	// instead, so such machines are safe without configuration. Set Retain
	// to override it: with a cheaper copy, or with func(v T) T { return v }
	// when every value is consumed (by Consume) before the next read.
	Retain func(v T) T

	// OnInbound sees every chunk of bytes read from the stream, before the
	// machine does. p is valid only during the call.
	OnInbound func(p []byte)
	// OnOutbound sees the bytes of every Send action, in order, as they are
	// queued. It runs with the session's lock held: it must not block or call
	// the session. p is valid only during the call.
	OnOutbound func(p []byte)
	// OnDeliver sees every delivered value as it is queued for Recv, under
	// the same rules as OnOutbound.
	OnDeliver func(v T)

	// Consume, if set, takes every delivered value instead of the Recv
	// queue, on the goroutine that ran the machine (the read loop, or a Do
	// caller), right after Retain and OnDeliver. It runs with the session's
	// lock held: it must not block or call the session. Recv then returns
	// nothing but the end of the session (its root cause, as usual), and
	// DeliverQueue does not apply. It saves a goroutine hop per value for
	// an application that only routes them, e.g. to per-request buffered
	// channels.
	Consume func(v T)

	// OnEnd, if set, is called once per connection when it ends, with the
	// session's root cause so far (ErrClosed after a clean Disconnect), as
	// Recv would return it once the queue is drained. It runs on the
	// session's read loop without the session's lock, before Disconnect
	// returns and before the session is Idle again; it must not call
	// Disconnect or wait on the session. It lets an application that
	// routes values with Consume learn of the end without a goroutine
	// waiting in Recv.
	OnEnd func(err error)
}

// Session drives one machine over one connection at a time, with qemu.qmp's
// life cycle. Create it with New; the zero Session is not usable. All methods
// are safe for concurrent use.
type Session[T any, M action.Machine[T]] struct {
	cfg Config[T, M]
	log *slog.Logger

	mu      sync.Mutex
	state   Runstate
	changed chan struct{} // closed and replaced on every state change

	cancel     context.CancelFunc // cancels the connecting call in progress
	connecting chan struct{}      // closed when that call returns
	ln         net.Listener       // between StartServer and Accept
	c          *link[T, M]        // the current connection, from establish to Idle
	disc       *disconnectOp      // the Disconnect in progress
}

type disconnectOp struct {
	done chan struct{}
	err  error
}

// New returns an Idle session. It panics if cfg.NewMachine is nil.
func New[T any, M action.Machine[T]](cfg Config[T, M]) *Session[T, M] {
	if cfg.NewMachine == nil {
		panic("transport: Config.NewMachine is nil")
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = DefaultReadBufferSize
	}
	if cfg.MaxPendingOutput <= 0 {
		cfg.MaxPendingOutput = DefaultMaxPendingOutput
	}
	if cfg.DeliverQueue <= 0 {
		cfg.DeliverQueue = DefaultDeliverQueue
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Name != "" {
		log = log.With("session", cfg.Name)
	}
	return &Session[T, M]{cfg: cfg, log: log, changed: make(chan struct{})}
}

// Name returns Config.Name.
func (s *Session[T, M]) Name() string { return s.cfg.Name }

// State returns the current runstate.
func (s *Session[T, M]) State() Runstate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Changed returns a channel closed at the next state change. Read State after
// it fires; several changes may have happened.
func (s *Session[T, M]) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// WaitState blocks until the session is in state want or ctx ends.
func (s *Session[T, M]) WaitState(ctx context.Context, want Runstate) error {
	for {
		s.mu.Lock()
		st, ch := s.state, s.changed
		s.mu.Unlock()
		if st == want {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Session[T, M]) setStateLocked(st Runstate) {
	if st == s.state {
		return
	}
	s.log.Debug("state change", "from", s.state, "to", st)
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
}

// beginConnecting moves Idle → Connecting and records the cancel function of
// the connecting call.
func (s *Session[T, M]) beginConnecting(ctx context.Context, op string) (context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != Idle {
		return nil, &StateError{Op: op, State: s.state, Required: Idle}
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel, s.connecting = cancel, make(chan struct{})
	s.setStateLocked(Connecting)
	return ctx, nil
}

// endConnectingLocked marks the connecting call finished.
func (s *Session[T, M]) endConnectingLocked() {
	if s.cancel != nil {
		s.cancel()
		close(s.connecting)
		s.cancel, s.connecting = nil, nil
	}
}

// failConnecting returns the session to Idle with a *ConnectError.
func (s *Session[T, M]) failConnecting(ctx context.Context, phase string, err error) error {
	if ctx.Err() != nil {
		// Whatever the I/O error says, the cause was the cancellation.
		err = ctx.Err()
	}
	s.mu.Lock()
	s.endConnectingLocked()
	s.setStateLocked(Idle)
	s.mu.Unlock()
	s.log.Debug("connecting failed", "phase", phase, "err", err)
	return &ConnectError{Phase: phase, Err: err}
}

// Connect dials d and establishes a session: Idle → Connecting → Running.
// On failure the session is Idle again and the error is a *ConnectError
// (Phase "connect" or "handshake") wrapping the root cause. Disconnect
// cancels a Connect in progress.
func (s *Session[T, M]) Connect(ctx context.Context, d Dialer) error {
	ctx, err := s.beginConnecting(ctx, "connect")
	if err != nil {
		return err
	}
	nc, err := d.Dial(ctx)
	if err != nil {
		return s.failConnecting(ctx, "connect", err)
	}
	return s.establish(ctx, nc)
}

// Start establishes a session over an already open stream nc (net.Pipe, an
// accepted connection): Idle → Connecting → Running. The session owns nc
// from then on and closes it, even on failure.
func (s *Session[T, M]) Start(ctx context.Context, nc net.Conn) error {
	ctx, err := s.beginConnecting(ctx, "start")
	if err != nil {
		nc.Close()
		return err
	}
	return s.establish(ctx, nc)
}

// StartServer opens a listening socket and returns without waiting for a
// peer, leaving the session Connecting; call Accept next. This split lets a
// program listen, then launch the peer (QEMU with -qmp unix:PATH), then
// accept. On failure the session is Idle and the error is a *ConnectError
// with Phase "listen".
func (s *Session[T, M]) StartServer(ctx context.Context, lo ListenOpener) error {
	ctx, err := s.beginConnecting(ctx, "start server")
	if err != nil {
		return err
	}
	ln, err := lo.Listen(ctx)
	if err == nil && ctx.Err() != nil {
		ln.Close()
		err = ctx.Err()
	}
	if err != nil {
		return s.failConnecting(ctx, "listen", err)
	}
	s.mu.Lock()
	s.endConnectingLocked()
	s.ln = ln
	s.mu.Unlock()
	s.log.Debug("listening", "addr", ln.Addr())
	return nil
}

// Accept waits for one peer on the socket opened by StartServer, stops
// listening (connections arriving later are refused, and any already queued
// are closed), and establishes the session: Connecting → Running. On failure
// (including ctx ending) the listener is closed, the session is Idle and the
// error is a *ConnectError with Phase "accept" or "handshake".
func (s *Session[T, M]) Accept(ctx context.Context) error {
	s.mu.Lock()
	if s.state != Connecting || s.ln == nil || s.cancel != nil {
		st := s.state
		s.mu.Unlock()
		if st == Connecting && s.ln != nil {
			return &StateError{Op: "accept (already accepting)", State: st, Required: Connecting}
		}
		return &StateError{Op: "accept (call StartServer first)", State: st, Required: Connecting}
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel, s.connecting = cancel, make(chan struct{})
	ln := s.ln
	s.mu.Unlock()

	nc, err := acceptContext(ctx, ln)
	s.mu.Lock()
	s.ln = nil
	s.mu.Unlock()
	ln.Close()
	if err != nil {
		return s.failConnecting(ctx, "accept", err)
	}
	s.log.Debug("accepted", "peer", nc.RemoteAddr())
	return s.establish(ctx, nc)
}

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

// establish starts the loops over nc, runs the handshake and enters Running.
func (s *Session[T, M]) establish(ctx context.Context, nc net.Conn) error {
	if ctx.Err() != nil {
		nc.Close()
		return s.failConnecting(ctx, "connect", ctx.Err())
	}
	l := newLink(s, nc)
	s.mu.Lock()
	s.c = l
	l.wg.Add(1)
	go l.readLoop()
	s.mu.Unlock()

	var herr error
	if hs := s.cfg.Handshake; hs != nil {
		herr = hs(ctx, s)
	}
	s.mu.Lock()
	if herr == nil && ctx.Err() != nil {
		herr = ctx.Err()
	}
	if herr == nil {
		s.endConnectingLocked()
		s.setStateLocked(Running)
		if l.stopped {
			// The stream broke right after the handshake: the session was
			// established, and is now over; Disconnect reports why.
			s.setStateLocked(Disconnecting)
		}
		s.mu.Unlock()
		s.log.Debug("running", "peer", nc.RemoteAddr())
		return nil
	}
	l.stopLocked()
	s.mu.Unlock()
	l.closeConn()
	l.wg.Wait()
	s.mu.Lock()
	s.c = nil
	s.mu.Unlock()
	return s.failConnecting(context.Background(), "handshake", herr)
}

// Disconnect ends the session and returns it to Idle. It is idempotent and
// safe in every state: in Idle it does nothing; while connecting it cancels
// the connecting call (or closes the listener of StartServer) and waits for
// Idle; in Running it flushes queued output (until ctx ends), closes the
// stream and joins both loops; in Disconnecting (the session broke) it joins
// the loops. Concurrent calls wait for the same result.
//
// It returns the first error that broke the session — a machine's Error, a
// read or write error, ErrPeerClosed — not a consequence of it, or nil for a
// clean local disconnect. If ctx ends before the output is flushed it
// returns ErrFlushAbandoned (unless the session had already broken).
func (s *Session[T, M]) Disconnect(ctx context.Context) error {
	for {
		s.mu.Lock()
		switch {
		case s.state == Idle:
			s.mu.Unlock()
			return nil
		case s.disc != nil:
			d := s.disc
			s.mu.Unlock()
			select {
			case <-d.done:
				return d.err
			case <-ctx.Done():
				return ctx.Err()
			}
		case s.state == Connecting && s.cancel != nil:
			// Dialing, listening, accepting or in the handshake: cancel
			// and wait for the connecting call to settle.
			s.cancel()
			ch := s.connecting
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		case s.state == Connecting && s.ln != nil:
			ln := s.ln
			s.ln = nil
			s.setStateLocked(Idle)
			s.mu.Unlock()
			ln.Close()
			return nil
		case s.c != nil:
			d := &disconnectOp{done: make(chan struct{})}
			s.disc = d
			l := s.c
			s.setStateLocked(Disconnecting)
			healthy := !l.stopped
			s.mu.Unlock()
			s.log.Debug("disconnecting", "healthy", healthy)

			if healthy && !l.flush(ctx) {
				s.mu.Lock()
				if l.err == nil && !l.stopped {
					l.err = ErrFlushAbandoned
				}
				s.mu.Unlock()
			}
			s.mu.Lock()
			l.stopLocked()
			s.mu.Unlock()
			l.closeConn()
			l.wg.Wait()

			s.mu.Lock()
			d.err = l.err
			s.c = nil
			s.disc = nil
			s.setStateLocked(Idle)
			s.mu.Unlock()
			close(d.done)
			if d.err != nil {
				s.log.Debug("disconnected", "cause", d.err)
			} else {
				s.log.Debug("disconnected")
			}
			return d.err
		default:
			// Unreachable by construction; do not spin.
			st := s.state
			s.mu.Unlock()
			return &StateError{Op: "disconnect", State: st, Required: Running}
		}
	}
}

// Do runs f against the machine under the session's lock, then carries out
// the actions it produced: Send bytes are queued for the write loop,
// delivered values are queued for Recv, an Error ends the session. Use it to
// put application input into the machine (a client's request, a server's
// response). f must not block or call the session.
//
// Do is allowed while the loops run (Running, and Connecting during the
// handshake); otherwise it returns a *StateError, or the session's root cause
// (ErrClosed after a clean Disconnect) once it broke. It returns f's error if
// f fails, the machine's error if the machine failed, and otherwise waits
// (until ctx ends) while more than Config.MaxPendingOutput bytes are queued.
func (s *Session[T, M]) Do(ctx context.Context, f func(m M) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	l := s.c
	if l == nil {
		st := s.state
		s.mu.Unlock()
		return &StateError{Op: "do", State: st, Required: Running}
	}
	if l.stopped {
		err := l.endErrLocked()
		s.mu.Unlock()
		return err
	}
	ferr := f(l.m)
	l.drainLocked()
	stopped := l.stopped
	var err error
	if stopped {
		err = l.endErrLocked()
	}
	// Checked while still locked: the common case needs no second lock.
	roomy := len(l.out) <= s.cfg.MaxPendingOutput
	s.mu.Unlock()
	if stopped {
		l.closeConn()
	}
	switch {
	case ferr != nil:
		return ferr
	case err != nil:
		return err
	case roomy:
		return nil
	}
	return l.waitRoom(ctx, false)
}

// Recv returns the next value delivered by the machine, waiting until one
// arrives or ctx ends. Values are returned in delivery order; after the
// session broke, queued values are still returned, then the root cause
// (ErrClosed after a clean Disconnect). Without a connection it returns a
// *StateError.
func (s *Session[T, M]) Recv(ctx context.Context) (T, error) {
	var zero T
	s.mu.Lock()
	l := s.c
	if l == nil {
		st := s.state
		s.mu.Unlock()
		return zero, &StateError{Op: "recv", State: st, Required: Running}
	}
	for {
		if l.head < len(l.queue) {
			v := l.queue[l.head]
			l.queue[l.head] = zero
			l.head++
			if l.head == len(l.queue) {
				l.head, l.queue = 0, l.queue[:0]
			}
			if l.roomWaiters > 0 {
				l.notifyRoomLocked()
			}
			s.mu.Unlock()
			return v, nil
		}
		if l.stopped {
			err := l.endErrLocked()
			s.mu.Unlock()
			return zero, err
		}
		l.readyWaiters++
		ch := l.ready
		s.mu.Unlock()
		select {
		case <-ch:
		case <-l.stop:
		case <-ctx.Done():
			s.mu.Lock()
			l.readyWaiters--
			s.mu.Unlock()
			return zero, ctx.Err()
		}
		s.mu.Lock()
		l.readyWaiters--
	}
}

// Exec runs f on the write loop with exclusive use of the stream for
// writing, after every byte queued before the call and before any queued
// after it, and returns f's error. It is the hook for out-of-band writes
// such as passing file descriptors (see package unix). Exec waits until f ran
// or ctx ends; a cancelled Exec that has not started yet never runs. If f
// fails, the session ends with that error as its root cause.
func (s *Session[T, M]) Exec(ctx context.Context, f func(nc net.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	l := s.c
	if l == nil {
		st := s.state
		s.mu.Unlock()
		return &StateError{Op: "exec", State: st, Required: Running}
	}
	if l.stopped {
		err := l.endErrLocked()
		s.mu.Unlock()
		return err
	}
	op := &execOp{at: len(l.out), fn: f, done: make(chan error, 1)}
	l.ops = append(l.ops, op)
	l.wakeWriter()
	s.mu.Unlock()
	select {
	case err := <-op.done:
		return err
	case <-l.stop:
		select {
		case err := <-op.done:
			return err
		default:
		}
		s.mu.Lock()
		err := l.endErrLocked()
		s.mu.Unlock()
		return err
	case <-ctx.Done():
		s.mu.Lock()
		op.cancelled = true
		s.mu.Unlock()
		select {
		case err := <-op.done:
			return err
		default:
			return ctx.Err()
		}
	}
}

type execOp struct {
	at        int // offset in the pending output at which f runs
	fn        func(net.Conn) error
	done      chan error
	cancelled bool // guarded by Session.mu
}

// link is one connection's state, from establish to the return to Idle.
// Fields below mu are guarded by Session.mu.
type link[T any, M action.Machine[T]] struct {
	s      *Session[T, M]
	nc     net.Conn
	m      M
	retain func(T) T // Config.Retain, else the machine's action.Retainer, else nil
	wg     sync.WaitGroup

	closeOnce sync.Once
	stop      chan struct{} // closed when the link stops

	out, spare    []byte // pending output, and the buffer being written
	ops, spareOps []*execOp
	writing       bool
	writerStarted bool
	direct        *directWriter // nil unless the stream is a plain socket
	wake          chan struct{} // capacity 1: pokes the write loop

	queue []T // delivered values; queue[head:] wait for Recv
	head  int

	ready        chan struct{} // closed and replaced when a value is queued, if readyWaiters > 0
	readyWaiters int
	room         chan struct{} // closed and replaced when output or queue shrinks, if roomWaiters > 0
	roomWaiters  int

	readBufSize int // the read loop's buffer size; written only by the read loop

	stopped    bool  // stop is closed; the stream is being closed
	closedByUs bool  // we closed the stream: later errors are consequences
	err        error // the root cause
}

func newLink[T any, M action.Machine[T]](s *Session[T, M], nc net.Conn) *link[T, M] {
	m := s.cfg.NewMachine()
	// Decided once per connection: the per-value path is one nil check.
	retain := s.cfg.Retain
	if r, ok := any(m).(action.Retainer[T]); ok && retain == nil {
		retain = r.Retain
	}
	return &link[T, M]{
		s:      s,
		nc:     nc,
		m:      m,
		retain: retain,
		direct: newDirectWriter(nc),

		readBufSize: min(initialReadBuffer, s.cfg.ReadBufferSize),
		stop:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
		ready:       make(chan struct{}),
		room:        make(chan struct{}),
	}
}

func (l *link[T, M]) queued() int { return len(l.queue) - l.head }

// drainLocked calls Next until WantMore or Error and carries out the actions.
func (l *link[T, M]) drainLocked() {
	cfg := &l.s.cfg
	for {
		a := l.m.Next()
		switch a.Kind {
		case action.WantMore:
			if len(l.out) > 0 {
				if len(l.out) <= directMax && l.canWriteDirectLocked() {
					l.writeDirectLocked()
				} else if !l.writing && len(l.ops) == 0 {
					l.wakeWriter()
				}
			}
			return
		case action.Send:
			if len(a.Bytes) == 0 {
				continue
			}
			if cfg.OnOutbound != nil {
				cfg.OnOutbound(a.Bytes)
			}
			// Gathered; written or handed to the write loop at WantMore.
			l.out = append(l.out, a.Bytes...)
		case action.Deliver:
			v := a.Value
			if l.retain != nil {
				v = l.retain(v)
			}
			if cfg.OnDeliver != nil {
				cfg.OnDeliver(v)
			}
			if cfg.Consume != nil {
				cfg.Consume(v)
				continue
			}
			l.queue = append(l.queue, v)
			if l.readyWaiters > 0 {
				close(l.ready)
				l.ready = make(chan struct{})
			}
		case action.Error:
			err := a.Err
			if err == nil {
				err = fmt.Errorf("machine returned an error action without an error")
			} else if errors.Is(err, io.EOF) {
				err = ErrPeerClosed // the machine's clean end after FeedEOF
			}
			l.failLocked(err)
			return
		default:
			l.failLocked(fmt.Errorf("machine returned an unknown action %v", a.Kind))
			return
		}
	}
}

// directMax is the most output written from the caller. Larger output
// goes to the write loop, which overlaps the caller's copying with its own
// writing and writes bigger batches: measured faster for bulk transfer.
const directMax = 16 << 10

// canWriteDirectLocked reports whether output may be written from the
// caller: the stream is a plain socket and the write loop owns nothing, so
// no byte queued earlier can be overtaken.
func (l *link[T, M]) canWriteDirectLocked() bool {
	return l.direct != nil && !l.writing && len(l.ops) == 0 && !l.stopped
}

// writeDirectLocked makes one non-blocking attempt to write the pending
// output, keeps what the kernel did not take, and wakes the write loop for
// it. It never blocks: a full socket buffer costs one failed write(2).
func (l *link[T, M]) writeDirectLocked() {
	n := l.direct.write(l.out)
	l.out = l.out[:copy(l.out, l.out[n:])]
	if len(l.out) > 0 {
		l.wakeWriter()
	}
	if n > 0 && l.roomWaiters > 0 {
		l.notifyRoomLocked()
	}
}

// wakeWriter pokes the write loop, starting it on first use: on a plain
// socket the caller writes small output itself, so an idle connection may
// never need it. Called with the session's lock held, on a link that has
// not stopped, so the read loop still counts in wg.
func (l *link[T, M]) wakeWriter() {
	if !l.writerStarted {
		l.writerStarted = true
		l.wg.Add(1)
		go l.writeLoop()
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link[T, M]) notifyRoomLocked() {
	close(l.room)
	l.room = make(chan struct{})
}

// failLocked records err as the root cause unless one is already known or the
// error is a consequence of our own close, and stops the link.
func (l *link[T, M]) failLocked(err error) {
	if l.err == nil && !l.closedByUs {
		l.err = err
		level := slog.LevelInfo
		if errors.Is(err, ErrPeerClosed) {
			level = slog.LevelDebug
		}
		l.s.log.Log(context.Background(), level, "session ended", "cause", err)
	}
	l.stopLocked()
}

// stopLocked marks the link stopped and wakes every waiter. The caller closes
// the stream after unlocking (closing may block, e.g. a TLS close_notify).
func (l *link[T, M]) stopLocked() {
	if l.stopped {
		return
	}
	l.stopped = true
	close(l.stop)
	if s := l.s; s.c == l && s.state == Running {
		s.setStateLocked(Disconnecting)
	}
}

// closeConn closes the stream; read and write errors after this point are
// consequences, not causes. Called without the lock.
func (l *link[T, M]) closeConn() {
	l.s.mu.Lock()
	l.closedByUs = true
	l.s.mu.Unlock()
	l.closeOnce.Do(func() { l.nc.Close() })
}

func (l *link[T, M]) endErrLocked() error {
	if l.err != nil {
		return l.err
	}
	return ErrClosed
}

// waitRoom waits until pending output is within its limit (and, for the read
// loop, the delivery queue too). It returns nil when there is room, the
// session's end error if the link stopped, or ctx's error.
func (l *link[T, M]) waitRoom(ctx context.Context, reader bool) error {
	s := l.s
	s.mu.Lock()
	for {
		if l.stopped {
			err := l.endErrLocked()
			s.mu.Unlock()
			return err
		}
		if len(l.out) <= s.cfg.MaxPendingOutput && (!reader || l.queued() < s.cfg.DeliverQueue) {
			s.mu.Unlock()
			return nil
		}
		l.roomWaiters++
		ch := l.room
		s.mu.Unlock()
		var cerr error
		select {
		case <-ch:
		case <-l.stop:
		case <-ctx.Done():
			cerr = ctx.Err()
		}
		s.mu.Lock()
		l.roomWaiters--
		if cerr != nil {
			s.mu.Unlock()
			return cerr
		}
	}
}

// flush waits until all queued output is written. It returns false if ctx
// ended first; true if flushed or if the link stopped.
func (l *link[T, M]) flush(ctx context.Context) bool {
	s := l.s
	s.mu.Lock()
	for {
		if l.stopped || (len(l.out) == 0 && len(l.ops) == 0 && !l.writing) {
			s.mu.Unlock()
			return true
		}
		l.roomWaiters++
		ch := l.room
		s.mu.Unlock()
		ok := true
		select {
		case <-ch:
		case <-l.stop:
		case <-ctx.Done():
			ok = false
		}
		s.mu.Lock()
		l.roomWaiters--
		if !ok {
			s.mu.Unlock()
			return false
		}
	}
}

// initialReadBuffer is the read loop's first buffer size (or
// Config.ReadBufferSize if smaller). An idle connection holds no more; a
// read that fills the buffer doubles it, up to Config.ReadBufferSize, so
// bulk input reaches full-size reads within a few reads.
const initialReadBuffer = 4 << 10

// nextReadBuffer returns the size of the buffer after a read of n bytes
// into a buffer of size cur, with limit max.
func nextReadBuffer(cur, n, max int) int {
	if n < cur || cur >= max {
		return cur
	}
	return min(2*cur, max)
}

func (l *link[T, M]) readLoop() {
	defer l.wg.Done()
	s := l.s
	if s.cfg.OnEnd != nil {
		defer l.reportEnd()
	}
	buf := make([]byte, l.readBufSize) // set before the loop started
	for {
		n, err := l.nc.Read(buf)
		if n > 0 {
			if s.cfg.OnInbound != nil {
				s.cfg.OnInbound(buf[:n])
			}
			s.mu.Lock()
			if l.stopped {
				s.mu.Unlock()
				return
			}
			l.m.Feed(buf[:n])
			l.drainLocked()
			stopped := l.stopped
			full := len(l.out) > s.cfg.MaxPendingOutput || l.queued() >= s.cfg.DeliverQueue
			l.readBufSize = nextReadBuffer(len(buf), n, s.cfg.ReadBufferSize)
			s.mu.Unlock()
			if stopped {
				l.closeConn()
				return
			}
			if l.readBufSize != len(buf) {
				// The machine let go of buf at WantMore; values that
				// still alias it (without Retain) keep it alive.
				buf = make([]byte, l.readBufSize)
			}
			if full && l.waitRoom(context.Background(), true) != nil {
				return
			}
		}
		if err != nil {
			s.mu.Lock()
			if errors.Is(err, io.EOF) {
				if !l.stopped {
					// The machine reports a partial message as its own
					// error, which becomes the root cause.
					l.m.FeedEOF()
					l.drainLocked()
				}
				err = ErrPeerClosed
			}
			// Recorded only if it is the first error and not a
			// consequence of our own close.
			l.failLocked(err)
			s.mu.Unlock()
			l.closeConn()
			return
		}
	}
}

// reportEnd calls Config.OnEnd once the link has stopped. The read loop
// calls it as it exits, which it does only after the link stopped.
func (l *link[T, M]) reportEnd() {
	l.s.mu.Lock()
	err := l.endErrLocked()
	l.s.mu.Unlock()
	l.s.cfg.OnEnd(err)
}

func (l *link[T, M]) writeLoop() {
	defer l.wg.Done()
	s := l.s
	for {
		s.mu.Lock()
		for len(l.out) == 0 && len(l.ops) == 0 && !l.stopped {
			s.mu.Unlock()
			select {
			case <-l.wake:
			case <-l.stop:
			}
			s.mu.Lock()
		}
		if l.stopped {
			for _, op := range l.ops {
				op.done <- l.endErrLocked()
			}
			l.ops = nil
			s.mu.Unlock()
			return
		}
		buf, ops := l.out, l.ops
		l.out, l.ops = l.spare[:0], l.spareOps[:0]
		l.writing = true
		s.mu.Unlock()

		err := l.write(buf, ops)

		s.mu.Lock()
		clear(ops)
		l.spare, l.spareOps = buf[:0], ops[:0]
		l.writing = false
		if l.roomWaiters > 0 {
			l.notifyRoomLocked()
		}
		if err != nil {
			l.failLocked(err)
		}
		stopped := l.stopped
		s.mu.Unlock()
		if stopped {
			l.closeConn()
			return
		}
	}
}

// write writes buf, running each op at its offset.
func (l *link[T, M]) write(buf []byte, ops []*execOp) error {
	pos := 0
	for _, op := range ops {
		if op.at > pos {
			if _, err := l.nc.Write(buf[pos:op.at]); err != nil {
				op.done <- err
				return err
			}
			pos = op.at
		}
		l.s.mu.Lock()
		cancelled := op.cancelled
		l.s.mu.Unlock()
		if cancelled {
			op.done <- context.Canceled
			continue
		}
		if err := op.fn(l.nc); err != nil {
			op.done <- err
			return err
		}
		op.done <- nil
	}
	if pos < len(buf) {
		if _, err := l.nc.Write(buf[pos:]); err != nil {
			return err
		}
	}
	return nil
}
