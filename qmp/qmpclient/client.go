package qmpclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// ErrDisconnected is matched by errors.Is for the error of every execute
// that was pending when the session ended, and of every listener then. The
// error also wraps the session's root cause.
var ErrDisconnected = errors.New("qmpclient: disconnected")

// ExecuteError is a command the server answered with an error response.
type ExecuteError struct {
	Command   string          // the command's name
	Arguments json.RawMessage // the arguments sent, nil for none
	Info      qmp.ErrorInfo   // the server's class and description
	Reply     json.RawMessage // the whole error response
}

// Error names the command and the server's error class and description.
func (e *ExecuteError) Error() string {
	return fmt.Sprintf("qmpclient: %s failed: %s: %s", e.Command, e.Info.Class, e.Info.Desc)
}

// disconnectedError is ErrDisconnected wrapping the root cause.
type disconnectedError struct{ cause error }

func (e *disconnectedError) Error() string {
	if e.cause == nil {
		return ErrDisconnected.Error()
	}
	return ErrDisconnected.Error() + ": " + e.cause.Error()
}
func (e *disconnectedError) Is(target error) bool { return target == ErrDisconnected }
func (e *disconnectedError) Unwrap() error        { return e.cause }

// Config configures a Client. The zero value talks to QEMU.
type Config struct {
	// Name identifies the connection in logs.
	Name string
	// Logger receives the client's logs; nil means slog.Default().
	Logger *slog.Logger
	// Machine sets the handshake options and message limit (its IDBase is
	// managed by the Client).
	Machine qmp.ClientMachineConfig
	// IdleResume is the session's transport.Config.IdleResume: how long
	// after an Execute (or a Listener's wait) that read the stream itself
	// the read loop takes the reading back; zero means
	// DefaultIdleResume. Replies and events are read by the goroutines
	// waiting for them (Execute, Listener.Next and Wait, WaitEvent), so
	// only what nobody waits for (events for a listener that is not in
	// Next, the end of the connection) waits up to twice this long.
	IdleResume time.Duration
}

// DefaultIdleResume is the Client's transport.Config.IdleResume. It is
// longer than the transport's default, because every QMP message a caller
// waits for is read by that caller, and the read loop's timer costs a busy
// client CPU each time it fires (see bench/cmd/report).
const DefaultIdleResume = 100 * time.Millisecond

// Client is a QMP client: it connects to a QMP server (QEMU, qemu-ga, a
// qmptest server), performs the handshake, and executes commands from any
// number of goroutines at once, pipelined on one connection, each reply going
// to its own caller. It delivers events to listeners, each with a bounded
// queue that never blocks the reader, so an event handler may itself execute
// commands on the same client.
//
// Replies and events are routed on the session's read loop as the machine
// delivers them (transport.Config.Consume): a reply goes straight from the
// reader to its caller. Each connection runs two goroutines, the session's
// reader and writer; when the session ends, the reader fails pending
// executes and ends listeners (transport.Config.OnEnd). Both end before
// Disconnect returns.
//
// A Client may connect again after a disconnect; command ids keep counting,
// so a reply QEMU sends late to the new connection is recognised as stale and
// dropped.
type Client struct {
	cfg    Config
	sess   *transport.Session[qmp.Received, *qmp.ClientMachine]
	lastID atomic.Uint64

	mu        sync.Mutex
	calls     map[uint64]*call // commands sent whose reply has not arrived, abandoned ones included
	listeners map[*Listener]struct{}
	greeting  *qmp.Greeting
	ready     chan struct{} // closed when the current connection's handshake is over
	done      chan struct{} // closed when the current connection ended and endAll ran
	endErr    error         // why the last connection ended, set before done closes
	late      uint64        // replies that arrived for abandoned calls

	// The descriptor gate (see ExecuteWithFiles): while fdHeld, or while
	// fdWaiting callers wait to hold it, no other command is sent.
	fdHeld    bool
	fdWaiting int
	gate      chan struct{} // closed and replaced when the gate or calls shrink
	fdConn    int8          // the connection can pass descriptors: 1 yes, -1 no, 0 unknown
}

type call struct {
	reply     chan qmp.Received // buffered: the reader never blocks on it
	err       error             // set before reply is closed on disconnect
	abandoned bool              // the caller's context ended; guarded by Client.mu
	// corked: the reply was routed under a session Cork, which the caller
	// ends once it has the reply (or gave up on it). Set under Client.mu
	// before the reply is sent.
	corked bool
}

var callPool = sync.Pool{New: func() any { return &call{reply: make(chan qmp.Received, 1)} }}

// NewClient returns an idle client.
func NewClient(cfg Config) *Client {
	c := &Client{cfg: cfg, calls: make(map[uint64]*call), listeners: make(map[*Listener]struct{}), gate: make(chan struct{})}
	c.sess = transport.New(transport.Config[qmp.Received, *qmp.ClientMachine]{
		Name:   cfg.Name,
		Logger: cfg.Logger,
		NewMachine: func() *qmp.ClientMachine {
			mc := c.cfg.Machine
			mc.IDBase = c.lastID.Load()
			// A new connection: its handshake has not finished. (The
			// machine is made before the read loop starts, so the
			// channels exist before ReceivedKindReady is consumed or the
			// connection ends.)
			c.mu.Lock()
			c.ready = make(chan struct{})
			c.done = make(chan struct{})
			c.mu.Unlock()
			return qmp.NewClientMachine(mc)
		},
		Handshake:  c.handshake,
		Consume:    c.consume,
		OnEnd:      c.onEnd,
		IdleResume: cmp.Or(cfg.IdleResume, DefaultIdleResume),
	})
	return c
}

// handshake waits until the machine reports the handshake finished, or
// the session ends.
func (c *Client) handshake(ctx context.Context, s *transport.Session[qmp.Received, *qmp.ClientMachine]) error {
	c.mu.Lock()
	ready, done := c.ready, c.done
	c.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.endErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onEnd runs on the session's read loop when the connection ends: it
// fails pending executes and ends listeners. A goroutine waiting in Recv
// would do the same (values go to consume) at the cost of its stack on
// every idle connection.
func (c *Client) onEnd(err error) {
	c.mu.Lock()
	c.endErr = err
	c.fdConn = 0
	done := c.done
	c.mu.Unlock()
	c.endAll(err)
	close(done)
}

// consume routes what the machine delivers. It runs on the session's read
// loop (or a Do caller) with the session's lock held: nothing here blocks.
func (c *Client) consume(r qmp.Received) {
	switch r.Kind {
	case qmp.ReceivedKindGreeting:
		c.mu.Lock()
		c.greeting = r.Greeting
		c.mu.Unlock()
	case qmp.ReceivedKindReady:
		c.mu.Lock()
		close(c.ready)
		c.mu.Unlock()
	case qmp.ReceivedKindReply:
		c.mu.Lock()
		cl := c.calls[r.ID]
		delete(c.calls, r.ID)
		if cl != nil && cl.abandoned {
			c.late++
			cl.abandoned = false
			callPool.Put(cl) // its caller has gone and nothing was sent to it
			cl = nil
		}
		if cl != nil {
			// Its caller usually sends its next command as soon as it
			// has this reply: output is held until it does, so the
			// commands of the callers this read woke leave together.
			cl.corked = true
			c.sess.Cork()
		}
		if c.fdWaiting > 0 && len(c.calls) == 0 {
			c.gateChangedLocked()
		}
		c.mu.Unlock()
		if cl != nil {
			cl.reply <- r // buffered, and one reply per id: never blocks
		}
	case qmp.ReceivedKindEvent:
		c.mu.Lock()
		for l := range c.listeners {
			l.offer(r.Event)
		}
		c.mu.Unlock()
	case qmp.ReceivedKindIDLessError:
		c.log().Warn("qmpclient: error without id while no command was pending",
			"class", r.Response.Error.Class, "desc", r.Response.Error.Desc)
	}
}

// Connect dials addr (see endpoint.Parse: "unix:/path", "tcp:host:port",
// "ws://host/path", "wss://host/path") and performs the QMP handshake. On failure the client is idle again and the error says which
// phase failed (a *transport.ConnectError wrapping the cause).
func (c *Client) Connect(ctx context.Context, addr string) error {
	d, err := endpoint.Parse(addr)
	if err != nil {
		return err
	}
	return c.ConnectDialer(ctx, d)
}

// ConnectDialer is Connect with any transport.Dialer.
//
// (A failed connection's end was handled before the session's Connect
// returns: OnEnd runs before the session is Idle again.)
func (c *Client) ConnectDialer(ctx context.Context, d transport.Dialer) error {
	return c.sess.Connect(ctx, transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
		nc, err := d.Dial(ctx)
		if err == nil {
			c.noteConn(nc)
		}
		return nc, err
	}))
}

// noteConn records whether the new connection can pass descriptors.
func (c *Client) noteConn(nc net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := nc.(unix.FDConn); ok {
		c.fdConn = 1
	} else {
		c.fdConn = -1
	}
}

// gateChangedLocked wakes every goroutine waiting on the descriptor gate.
func (c *Client) gateChangedLocked() {
	close(c.gate)
	c.gate = make(chan struct{})
}

func (c *Client) log() *slog.Logger {
	if c.cfg.Logger != nil {
		return c.cfg.Logger
	}
	return slog.Default()
}

// endAll fails every pending execute and ends every listener.
func (c *Client) endAll(cause error) {
	err := &disconnectedError{cause: cause}
	if errors.Is(cause, transport.ErrClosed) {
		err.cause = nil
	}
	c.mu.Lock()
	calls := c.calls
	c.calls = make(map[uint64]*call)
	ls := c.listeners
	c.listeners = make(map[*Listener]struct{})
	for id, cl := range calls {
		if cl.abandoned {
			delete(calls, id) // nobody waits: reuse it
			cl.abandoned = false
			callPool.Put(cl)
		}
	}
	c.gateChangedLocked()
	c.mu.Unlock()
	for _, cl := range calls {
		cl.err = err
		close(cl.reply)
	}
	for l := range ls {
		l.end(err)
	}
}

// Greeting returns the greeting of the current or last connection.
func (c *Client) Greeting() *qmp.Greeting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.greeting
}

// State returns the session's runstate.
func (c *Client) State() transport.Runstate { return c.sess.State() }

// Session returns the underlying session (for WaitState, Changed, Exec).
func (c *Client) Session() *transport.Session[qmp.Received, *qmp.ClientMachine] { return c.sess }

// Disconnect ends the session: pending executes fail with ErrDisconnected
// and listeners end. It returns the error that broke the session, if any.
// Queued output is flushed until ctx ends (transport.ErrFlushAbandoned
// then); the stream is closed and the connection's goroutines have ended
// when it returns, unless ctx ended while another Disconnect was in
// progress (ctx's error then).
func (c *Client) Disconnect(ctx context.Context) error {
	return c.sess.Disconnect(ctx)
}

// LateReplies returns how many replies arrived after their caller had
// given up (its context ended) and were dropped.
func (c *Client) LateReplies() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.late
}

// Execute runs command cmd with args and returns the raw "return" value.
// args is nil, a json.RawMessage / []byte holding a JSON object, or any
// value encoding/json turns into an object. A server error is an
// *ExecuteError. If ctx ends first the command is forgotten (its late reply
// is dropped) and ctx's error returned.
func (c *Client) Execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	return c.execute(ctx, cmd, args, false)
}

// ExecuteOOB is Execute with exec-oob (needs the oob capability).
func (c *Client) ExecuteOOB(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	return c.execute(ctx, cmd, args, true)
}

// ExecuteInto runs cmd and decodes its return value into result (which may
// be nil to discard it).
func (c *Client) ExecuteInto(ctx context.Context, cmd string, args, result any) error {
	raw, err := c.Execute(ctx, cmd, args)
	if err != nil || result == nil {
		return err
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("qmpclient: decoding the result of %s: %w", cmd, err)
	}
	return nil
}

func encodeArgs(args any) ([]byte, error) {
	switch a := args.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return a, nil
	case []byte:
		return a, nil
	}
	return json.Marshal(args)
}

func (c *Client) execute(ctx context.Context, cmd string, args any, oob bool) (json.RawMessage, error) {
	raw, err := encodeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("qmpclient: encoding the arguments of %s: %w", cmd, err)
	}
	cl := callPool.Get().(*call)
	var id uint64
	var ferr error
	var gate chan struct{}
	for {
		err = c.sess.Do(ctx, func(m *qmp.ClientMachine) error {
			// Checked and registered under c.mu, so an ExecuteWithFiles
			// that finds no call in flight holds the gate before another
			// command can be sent.
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.fdHeld || c.fdWaiting > 0 {
				gate = c.gate
				return errGated
			}
			if oob {
				id, ferr = m.ExecuteOOB(cmd, raw)
			} else {
				id, ferr = m.Execute(cmd, raw)
			}
			if ferr != nil {
				return ferr
			}
			c.lastID.Store(m.LastID())
			c.calls[id] = cl
			return nil
		})
		if err != errGated {
			break
		}
		select {
		case <-gate:
		case <-ctx.Done():
			callPool.Put(cl)
			return nil, ctx.Err()
		}
	}
	if err != nil {
		if id != 0 {
			// Queued, but the session could not take more: wait anyway
			// (Do only failed on ctx or a broken session).
			return c.wait(ctx, cl, id, cmd, raw)
		}
		callPool.Put(cl)
		if err == ferr || ctx.Err() != nil {
			return nil, err
		}
		// Not connected, or the session broke: the cause is wrapped.
		return nil, &disconnectedError{cause: err}
	}
	return c.wait(ctx, cl, id, cmd, raw)
}

func (c *Client) wait(ctx context.Context, cl *call, id uint64, cmd string, args []byte) (json.RawMessage, error) {
	// While it waits and nobody reads, this goroutine reads and routes
	// replies itself (transport.Await).
	r, ok, err := transport.Await(ctx, c.sess, cl.reply)
	switch {
	case err == nil && !ok:
		return nil, cl.err // the call is not reused: its channel is closed
	case err == nil:
		if cl.corked { // always, for a reply: consume set it before sending
			cl.corked = false
			c.sess.Uncork()
		}
		callPool.Put(cl)
		if r.Response.Error != nil {
			return nil, &ExecuteError{Command: cmd, Arguments: append(json.RawMessage(nil), args...),
				Info: *r.Response.Error, Reply: r.Response.Raw}
		}
		return r.Response.Return, nil
	default: // ctx ended
		c.giveUp(id, cl)
		return nil, ctx.Err()
	}
}

// giveUp forgets call cl (id) whose caller's context ended. The command
// stays in flight: the reader drops its reply when it comes (and counts
// it), and ExecuteWithFiles keeps waiting for it. Nothing here waits on the
// session.
func (c *Client) giveUp(id uint64, cl *call) {
	c.mu.Lock()
	corked := false
	if c.calls[id] == cl {
		cl.abandoned = true
	} else { // the reader handed it a reply or the end of the session closed it: do not reuse
		corked, cl.corked = cl.corked, false
	}
	c.mu.Unlock()
	if corked {
		c.sess.Uncork() // its reply's Cork: nobody else ends it
	}
}

// errGated is what the function passed to Do returns when the descriptor
// gate is closed to other commands.
var errGated = errors.New("qmpclient: waiting for a command passing descriptors")

// StartServer opens a listening socket at addr and returns without waiting:
// launch QEMU pointing at it, then call Accept. The split avoids racing the
// peer for the socket.
func (c *Client) StartServer(ctx context.Context, addr string) error {
	lo, err := endpoint.ParseListen(addr)
	if err != nil {
		return err
	}
	return c.sess.StartServer(ctx, transport.ListenFunc(func(ctx context.Context) (net.Listener, error) {
		ln, err := lo.Listen(ctx)
		if err != nil {
			return nil, err
		}
		return noteListener{ln, c}, nil
	}))
}

// noteListener records what kind of connection it accepted.
type noteListener struct {
	net.Listener
	c *Client
}

func (l noteListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		l.c.noteConn(nc)
	}
	return nc, err
}

// Accept waits for the peer on the socket opened by StartServer, then
// performs the QMP handshake over that connection.
func (c *Client) Accept(ctx context.Context) error {
	return c.sess.Accept(ctx)
}

// ErrFilesUnsupported is returned by ExecuteWithFiles on a connection that
// cannot pass file descriptors (TCP, WebSocket): nothing was sent, and the
// session keeps running.
var ErrFilesUnsupported = errors.New("qmpclient: file descriptors can only be passed over a unix socket")

// ExecuteWithFiles is Execute with files passed to the server over a unix
// socket (SCM_RIGHTS), for getfd and add-fd. The descriptors travel with the
// first bytes of the command itself. QEMU keeps descriptors it receives for
// whichever command next asks for one, reading ahead of the command it
// runs, so the command and its descriptors are made atomic against every
// other command on the session: ExecuteWithFiles waits (queued before any
// command that comes after it) until no other command is in flight, sends
// its own, and lets no other command go out until its reply arrives or ctx
// ends. The files stay owned by the caller. It does not need the oob
// capability. On a connection that cannot pass descriptors it returns
// ErrFilesUnsupported before sending anything.
func (c *Client) ExecuteWithFiles(ctx context.Context, cmd string, args any, files ...*os.File) (json.RawMessage, error) {
	raw, err := encodeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("qmpclient: encoding the arguments of %s: %w", cmd, err)
	}
	if err := c.holdGate(ctx); err != nil {
		return nil, err
	}
	defer c.releaseGate()

	cl := callPool.Get().(*call)
	var id uint64
	var msg []byte
	var ferr error
	err = c.sess.Do(ctx, func(m *qmp.ClientMachine) error {
		id, msg, ferr = m.ExecuteDetached(cmd, raw)
		if ferr != nil {
			return ferr
		}
		c.lastID.Store(m.LastID())
		c.mu.Lock()
		c.calls[id] = cl
		c.mu.Unlock()
		return nil
	})
	switch {
	case err != nil && id == 0:
		callPool.Put(cl)
		if err == ferr || ctx.Err() != nil {
			return nil, err
		}
		return nil, &disconnectedError{cause: err}
	case err != nil && ctx.Err() != nil:
		// Registered, never sent.
		c.withdraw(id, cl)
		return nil, ctx.Err()
	case err == nil:
		// 0: not started, 1: writing, 2: withdrawn before it started.
		var state atomic.Int32
		var unsupported bool
		err = c.sess.Exec(ctx, func(nc net.Conn) error {
			if !state.CompareAndSwap(0, 1) {
				return nil
			}
			uc, ok := nc.(unix.FDConn)
			if !ok {
				unsupported = true
				return nil
			}
			_, err := uc.WriteFDs(msg, files...)
			return err
		})
		switch {
		case err == nil && unsupported:
			c.withdraw(id, cl)
			return nil, ErrFilesUnsupported
		case err != nil && ctx.Err() != nil && state.CompareAndSwap(0, 2):
			c.withdraw(id, cl)
			return nil, ctx.Err()
		}
		// Sent, being sent, or the session ended (which fails the call).
	}
	return c.wait(ctx, cl, id, cmd, raw)
}

// holdGate waits until no other command is in flight and takes the
// descriptor gate, keeping other commands from being sent meanwhile. It
// fails fast on a connection known not to pass descriptors.
func (c *Client) holdGate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fdConn < 0 {
		return ErrFilesUnsupported
	}
	c.fdWaiting++
	for c.fdHeld || len(c.calls) > 0 {
		gate := c.gate
		c.mu.Unlock()
		select {
		case <-gate:
			c.mu.Lock()
		case <-ctx.Done():
			c.mu.Lock()
			c.fdWaiting--
			c.gateChangedLocked()
			return ctx.Err()
		}
	}
	c.fdWaiting--
	c.fdHeld = true
	return nil
}

func (c *Client) releaseGate() {
	c.mu.Lock()
	c.fdHeld = false
	c.gateChangedLocked()
	c.mu.Unlock()
}

// withdraw forgets a command registered with the machine but never sent.
func (c *Client) withdraw(id uint64, cl *call) {
	c.mu.Lock()
	mine := c.calls[id] == cl
	if mine {
		delete(c.calls, id)
	}
	corked := cl.corked // a reply to a command never sent: a server that guessed its id
	cl.corked = false
	c.mu.Unlock()
	if corked {
		c.sess.Uncork()
	}
	if !mine {
		return // the session ended and failed it, or a reply took it
	}
	callPool.Put(cl)
	// A function that produces no output and a context that ends inside
	// it: Do runs it and returns at once, whatever output is pending.
	ctx, cancel := context.WithCancel(context.Background())
	_ = c.sess.Do(ctx, func(m *qmp.ClientMachine) error { m.Cancel(id); cancel(); return nil })
	cancel()
}
