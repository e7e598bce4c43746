package qmptest

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// flushTimeout bounds the flush of a connection that ends while the server
// keeps running.
const flushTimeout = 5 * time.Second

// conn is one client connection: a session and the goroutine that executes
// its commands in order.
type conn struct {
	s          *Server
	sess       *transport.Session[qmp.Command, *qmp.ServerMachine]
	ctx        context.Context // the server's, carrying the conn for handlers
	after      []pendingEvent  // EmitAfter's events for the current command
	closeAfter bool            // CloseAfterReply was called
	slow       bool            // dropped for falling behind; guarded by Server.mu

	emu     sync.Mutex
	events  []queuedEvent // waiting for room in the backlog
	feeding bool          // feed is running
	fed     chan struct{} // closed when feed ends
}

type pendingEvent struct {
	name string
	data []byte
}

type connKey struct{}

func connFrom(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// startConn registers nc and starts serving it; it reports false (having
// closed nc) when the server is closed. With releaseTurn the connection
// gives the one-client turn back when it ends.
func (s *Server) startConn(nc net.Conn, releaseTurn bool) bool {
	c := &conn{s: s}
	c.ctx = context.WithValue(s.ctx, connKey{}, c)
	if s.cfg.Freezable {
		nc = &freezableConn{Conn: nc, s: s, closed: make(chan struct{})}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	s.served++
	n := s.served
	c.sess = transport.New(transport.Config[qmp.Command, *qmp.ServerMachine]{
		NewMachine:     func() *qmp.ServerMachine { return qmp.NewServerMachine(s.mcfg) },
		Handshake:      sendGreeting,
		Name:           "qmptest#" + itoa(n),
		Logger:         s.cfg.Logger,
		ReadBufferSize: s.cfg.ReadBufferSize,
		DeliverQueue:   32,
		// A client that half-closes after its commands gets every
		// answer, as from QEMU.
		HalfClose: true,
		// Zero means the transport's default.
		MaxPendingOutput: s.cfg.MaxClientBacklog,
	})
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if releaseTurn {
			defer func() { <-s.turn }()
		}
		c.run(nc)
	}()
	return true
}

// sendGreeting pushes the machine's greeting out (Do drains the machine).
func sendGreeting(ctx context.Context, sess *transport.Session[qmp.Command, *qmp.ServerMachine]) error {
	return sess.Do(ctx, func(*qmp.ServerMachine) error { return nil })
}

func (c *conn) run(nc net.Conn) {
	s := c.s
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if err := c.sess.Start(s.ctx, nc); err != nil {
		return
	}
	for !c.closeAfter {
		cmd, err := c.sess.Recv(s.ctx)
		if err != nil {
			break
		}
		if !s.cfg.MultiClient {
			c.sendStale()
		}
		c.execute(cmd)
	}
	ctx, cancel := context.WithTimeout(s.ctx, flushTimeout)
	defer cancel()
	_ = c.sess.Disconnect(ctx)
}

// sendStale sends the replies whose client left before they were ready, as
// QEMU sends them to its next client.
func (c *conn) sendStale() {
	s := c.s
	s.mu.Lock()
	stale := s.stale
	s.stale = nil
	s.mu.Unlock()
	for _, r := range stale {
		_ = c.sess.Do(s.ctx, r.reply)
	}
}

// execute runs one command's handler and queues its reply.
func (c *conn) execute(cmd qmp.Command) {
	s := c.s
	c.after = c.after[:0]
	var reply func(m *qmp.ServerMachine) error
	h := s.handler(cmd.Name)
	if h == nil {
		reply = errorReply(cmd.ID, "CommandNotFound", "The command "+cmd.Name+" has not been found")
	} else {
		res, err := h(c.ctx, cmd.Arguments)
		var qe *Error
		switch {
		case errors.Is(err, ErrNoReply):
		case errors.Is(err, ErrDropConnection):
			_ = c.sess.Exec(s.ctx, func(net.Conn) error { return ErrDropConnection })
			c.closeAfter = true
			return
		case errors.As(err, &qe):
			reply = errorReply(cmd.ID, qe.Class, qe.Desc)
		case err != nil:
			reply = errorReply(cmd.ID, "GenericError", err.Error())
		default:
			raw, err := encodeResult(res)
			if err != nil {
				reply = errorReply(cmd.ID, "GenericError", err.Error())
			} else {
				reply = func(m *qmp.ServerMachine) error {
					if m.Return(cmd.ID, raw) != nil { // Return validates raw
						return m.ReturnError(cmd.ID, "GenericError", "qmptest: result is not valid JSON")
					}
					return nil
				}
			}
		}
	}
	if reply != nil {
		if c.sess.State() != transport.RunstateRunning {
			if s.ctx.Err() == nil && !s.cfg.MultiClient {
				// The client left while the command ran: like QEMU,
				// answer the next client.
				s.mu.Lock()
				s.stale = append(s.stale, staleReply{reply: reply})
				s.mu.Unlock()
			}
		} else {
			// A failure means the client left meanwhile: QEMU loses
			// replies already on their way.
			c.waitEventsFed()
			_ = c.sess.Do(s.ctx, reply)
		}
	}
	for _, ev := range c.after {
		s.emitRaw(ev.name, ev.data)
	}
	if c.closeAfter {
		_ = c.sess.Exec(s.ctx, func(nc net.Conn) error { return errQuit })
	}
}

var errQuit = errors.New("qmptest: connection closed after the reply")

func errorReply(id []byte, class, desc string) func(m *qmp.ServerMachine) error {
	return func(m *qmp.ServerMachine) error { return m.ReturnError(id, class, desc) }
}

// queuedEvent is an event waiting for room in a client's backlog.
type queuedEvent struct {
	name string
	data []byte
	ts   time.Time
}

// sendEvent queues an event for the client without waiting. Within the
// client's backlog it goes straight to the machine; beyond it, events
// wait in the client's event queue, which a goroutine feeds to the machine
// as the client reads; a client whose event queue is full cannot keep up
// and is dropped.
func (c *conn) sendEvent(ev queuedEvent) {
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.feeding {
		if len(c.events) >= c.s.cfg.EventQueue {
			c.dropSlow()
			return
		}
		c.events = append(c.events, ev)
		return
	}
	if c.trySend(ev) {
		return
	}
	c.feeding = true
	c.fed = make(chan struct{})
	c.s.wg.Add(1)
	go c.feed()
}

// trySend queues ev in the machine and reports whether the backlog is
// still within its limit. It never waits: Do waits for room only until its
// context ends, and this one ends inside the function, so Do returns at
// once, with the context's error exactly when the backlog is over the
// limit.
func (c *conn) trySend(ev queuedEvent) bool {
	ctx, cancel := context.WithCancel(c.s.ctx)
	defer cancel()
	err := c.sess.Do(ctx, func(m *qmp.ServerMachine) error {
		_, err := m.SendEvent(ev.name, ev.data, ev.ts)
		cancel()
		return err
	})
	return !errors.Is(err, context.Canceled) || c.s.ctx.Err() != nil
}

// feed waits for room in the client's backlog and moves queued events
// into it, until the queue is empty, the connection ends or the server
// closes.
func (c *conn) feed() {
	defer c.s.wg.Done()
	for {
		// Waits while the backlog is over its limit.
		err := c.sess.Do(c.s.ctx, func(*qmp.ServerMachine) error { return nil })
		c.emu.Lock()
		room := true
		if err == nil {
			for i, ev := range c.events {
				c.events[i] = queuedEvent{}
				room = c.trySend(ev)
			}
		}
		c.events = c.events[:0]
		if err != nil || room {
			c.feeding = false
			close(c.fed)
			c.emu.Unlock()
			return
		}
		c.emu.Unlock()
	}
}

// waitEventsFed waits until the events queued for the client are in the
// machine, so that a reply does not overtake them.
func (c *conn) waitEventsFed() {
	c.emu.Lock()
	fed, feeding := c.fed, c.feeding
	c.emu.Unlock()
	if feeding {
		select {
		case <-fed:
		case <-c.s.ctx.Done():
		}
	}
}

// dropSlow disconnects a client that cannot keep up, once, and counts it.
// Called with c.emu held.
func (c *conn) dropSlow() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.slow || s.closed {
		return
	}
	c.slow = true
	s.slow++
	s.cfg.Logger.Info("qmptest: dropping a client that does not keep up with events", "session", c.sess.Name())
	s.wg.Add(1)
	go func() { // closing may block a little (a TLS alert): not on Emit
		defer s.wg.Done()
		c.drop()
	}()
}

// drop closes the connection at once.
func (c *conn) drop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.sess.Disconnect(ctx)
}

// Emit sends an event from inside a handler, before the command's reply: to
// every negotiated client, as Server.Emit does. data is nil, raw JSON or a
// value to encode. Outside a handler it is Server.Emit of no server and
// fails.
func Emit(ctx context.Context, name string, data any) error {
	c := connFrom(ctx)
	if c == nil {
		return errNotInHandler
	}
	return c.s.Emit(name, data)
}

// EmitAfter queues an event to be sent, to every negotiated client, right
// after the reply of the command whose handler calls it.
func EmitAfter(ctx context.Context, name string, data any) error {
	c := connFrom(ctx)
	if c == nil {
		return errNotInHandler
	}
	raw, err := encodeEvent(data)
	if err != nil {
		return err
	}
	c.after = append(c.after, pendingEvent{name: name, data: raw})
	return nil
}

// CloseAfterReply makes the connection close once the reply of the command
// whose handler calls it (and the events queued with EmitAfter) is written —
// what quit does.
func CloseAfterReply(ctx context.Context) error {
	c := connFrom(ctx)
	if c == nil {
		return errNotInHandler
	}
	c.closeAfter = true
	return nil
}

// WriteRaw writes p to the client exactly as given, after everything queued
// before it — for fault injection: garbage, a huge message, half a message.
// p is not retained after WriteRaw returns.
func WriteRaw(ctx context.Context, p []byte) error {
	c := connFrom(ctx)
	if c == nil {
		return errNotInHandler
	}
	return c.sess.Exec(c.s.ctx, func(nc net.Conn) error {
		_, err := nc.Write(p)
		return err
	})
}

// ReceivedFiles takes the descriptors the client passed on a unix socket so
// far (see qmpclient.Client.ExecuteWithFiles); the caller owns them. On other
// transports it returns none.
func ReceivedFiles(ctx context.Context) []*os.File {
	c := connFrom(ctx)
	if c == nil {
		return nil
	}
	var files []*os.File
	_ = c.sess.Exec(c.s.ctx, func(nc net.Conn) error {
		if fc, ok := nc.(*freezableConn); ok {
			nc = fc.Conn
		}
		if uc, ok := nc.(unix.FDConn); ok {
			files = uc.TakeFDs()
		}
		return nil
	})
	return files
}

// WaitClientGone blocks until the client that sent the command whose
// handler calls it has disconnected, or ctx ends (ctx's error). A handler
// uses it to answer only after its client left — the reply then goes to the
// next client, as QEMU does with a command that outlives its client. (A
// client that only half-closed is still there: it may read the answers. On
// a unix socket on Linux a full close is told apart at once; a TCP
// client's close is noticed when a write to it fails.)
func WaitClientGone(ctx context.Context) error {
	c := connFrom(ctx)
	if c == nil {
		return errNotInHandler
	}
	for {
		changed := c.sess.Changed()
		if c.sess.State() != transport.RunstateRunning {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errNotInHandler = errors.New("qmptest: not called from a handler's context")

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
