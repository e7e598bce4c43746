package transport

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/wirereactor/wirereactor/action"
)

// Session drives one machine over one connection at a time, with qemu.qmp's
// life cycle. Create it with New; the zero Session is not usable. All methods
// are safe for concurrent use.
type Session[T any, M action.Machine[T]] struct {
	cfg Config[T, M]
	log *slog.Logger

	mu      sync.Mutex
	doers   atomic.Int32 // Do calls waiting for mu, and Corks: the last one writes what they all queued
	corked  atomic.Bool  // small output was left for them (see drainLocked and Uncork)
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
	if cfg.IdleResume <= 0 {
		cfg.IdleResume = DefaultIdleResume
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
	if s.state != RunstateIdle {
		return nil, &StateError{Op: op, State: s.state, Required: RunstateIdle}
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel, s.connecting = cancel, make(chan struct{})
	s.setStateLocked(RunstateConnecting)
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

// failConnecting returns the session to Idle with a *ConnectError whose
// cause is ctx's error if ctx ended (whatever the I/O error says, the cause
// was the cancellation), else err.
func (s *Session[T, M]) failConnecting(ctx context.Context, phase string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return s.connectFailed(phase, err)
}

// connectFailed returns the session to Idle with a *ConnectError of err.
func (s *Session[T, M]) connectFailed(phase string, err error) error {
	s.mu.Lock()
	s.endConnectingLocked()
	s.setStateLocked(RunstateIdle)
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
	if s.state != RunstateConnecting || s.ln == nil || s.cancel != nil {
		st := s.state
		s.mu.Unlock()
		if st == RunstateConnecting && s.ln != nil {
			return &StateError{Op: "accept (already accepting)", State: st, Required: RunstateConnecting}
		}
		return &StateError{Op: "accept (call StartServer first)", State: st, Required: RunstateConnecting}
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
		s.setStateLocked(RunstateRunning)
		if l.stopped {
			// The stream broke right after the handshake: the session was
			// established, and is now over; Disconnect reports why.
			s.setStateLocked(RunstateDisconnecting)
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
	return s.connectFailed("handshake", herr)
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
		case s.state == RunstateIdle:
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
		case s.state == RunstateConnecting && s.cancel != nil:
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
		case s.state == RunstateConnecting && s.ln != nil:
			ln := s.ln
			s.ln = nil
			s.setStateLocked(RunstateIdle)
			s.mu.Unlock()
			ln.Close()
			return nil
		case s.c != nil:
			d := &disconnectOp{done: make(chan struct{})}
			s.disc = d
			l := s.c
			s.setStateLocked(RunstateDisconnecting)
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
			s.setStateLocked(RunstateIdle)
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
			return &StateError{Op: "disconnect", State: st, Required: RunstateRunning}
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
	if !s.mu.TryLock() {
		// Counted only while waiting: the holder then leaves small
		// output for this Do to write with its own.
		s.doers.Add(1)
		s.mu.Lock()
		s.doers.Add(-1)
	}
	l := s.c
	if l == nil {
		st := s.state
		s.mu.Unlock()
		return &StateError{Op: "do", State: st, Required: RunstateRunning}
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
	if err := l.waitRoom(ctx.Done(), false); err != errGaveUp {
		return err
	}
	return ctx.Err()
}

// Cork tells the session that the calling code is about to call Do, so
// small output (up to 16 KiB queued) that Do or the machine produces
// meanwhile is left queued instead of written at once, until the matching
// Uncork: several goroutines' messages then leave in one write(2). It is
// meant for Config.Consume handing a reply to a caller that usually sends
// its next message right after (qmpclient corks for each reply it routes
// and uncorks when the caller has it), as TCP_CORK holds partial frames.
// Corks count; the last Uncork writes what was left. Every Cork must be
// followed by exactly one Uncork, soon: held output waits for it. Cork
// never blocks and may be called with the session's lock held (from
// Consume).
func (s *Session[T, M]) Cork() { s.doers.Add(1) }

// Uncork ends a Cork. The last one writes the output left queued
// meanwhile, unless a Do is about to (it writes it with its own). It panics
// if there is no Cork to end.
func (s *Session[T, M]) Uncork() {
	n := s.doers.Add(-1)
	if n < 0 {
		panic("transport: Uncork without Cork")
	}
	// drainLocked sets corked before it reads doers: either it sees this
	// decrement and writes, or this sees corked and writes.
	if n > 0 || !s.corked.Load() {
		return
	}
	s.mu.Lock()
	if l := s.c; l != nil && !l.stopped && s.doers.Load() == 0 {
		s.corked.Store(false)
		l.writeOutLocked()
	}
	s.mu.Unlock()
}

// Recv returns the next value delivered by the machine, waiting until one
// arrives or ctx ends. Values are returned in delivery order; after the
// session broke, queued values are still returned, then the root cause
// (ErrClosed after a clean Disconnect). Without a connection it returns a
// *StateError. While it waits and nobody reads the stream, the calling
// goroutine reads it and drives the machine itself (see the package
// documentation).
func (s *Session[T, M]) Recv(ctx context.Context) (T, error) {
	var zero T
	s.mu.Lock()
	l := s.c
	if l == nil {
		st := s.state
		s.mu.Unlock()
		return zero, &StateError{Op: "recv", State: st, Required: RunstateRunning}
	}
	var w *waiter
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
			if w != nil {
				l.leaveLocked(w)
			}
			s.mu.Unlock()
			return v, nil
		}
		if l.stopped {
			if w != nil {
				l.leaveLocked(w)
			}
			err := l.endErrLocked()
			s.mu.Unlock()
			return zero, err
		}
		if l.peerEOF {
			// HalfClose: the peer sends nothing more.
			if w != nil {
				l.leaveLocked(w)
			}
			s.mu.Unlock()
			return zero, ErrPeerClosed
		}
		if w == nil {
			w = l.getWaiterLocked()
		}
		led, err := l.leadLocked(ctx, w)
		if err != nil || ctx.Err() != nil {
			l.leaveLocked(w)
			s.mu.Unlock()
			return zero, ctx.Err()
		}
		if led {
			continue
		}
		l.followLocked(w)
		l.readyWaiters++
		ch := l.ready
		s.mu.Unlock()
		select {
		case <-ch:
		case <-w.turn:
		case <-l.stop:
		case <-ctx.Done():
		}
		s.mu.Lock()
		l.readyWaiters--
		if ctx.Err() != nil {
			l.leaveLocked(w)
			s.mu.Unlock()
			return zero, ctx.Err()
		}
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
		return &StateError{Op: "exec", State: st, Required: RunstateRunning}
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
