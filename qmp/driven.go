package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// ErrDisconnected is matched by errors.Is for the error of every execute
// that was pending when the session ended, and of every listener then. The
// error also wraps the session's root cause.
var ErrDisconnected = errors.New("qmp: disconnected")

// ExecuteError is a command the server answered with an error response.
type ExecuteError struct {
	Command   string          // the command's name
	Arguments json.RawMessage // the arguments sent, nil for none
	Info      ErrorInfo       // the server's class and description
	Reply     json.RawMessage // the whole error response
}

func (e *ExecuteError) Error() string {
	return fmt.Sprintf("qmp: %s failed: %s: %s", e.Command, e.Info.Class, e.Info.Desc)
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
	Machine ClientConfig
}

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
	sess   *transport.Session[Received, *ClientMachine]
	lastID atomic.Uint64

	fdMu sync.Mutex // serialises ExecuteWithFiles

	mu        sync.Mutex
	calls     map[uint64]*call
	listeners map[*Listener]struct{}
	greeting  *Greeting
	ready     chan struct{} // closed when the current connection's handshake is over
	done      chan struct{} // closed when the current connection ended and endAll ran
	endErr    error         // why the last connection ended, set before done closes
}

type call struct {
	reply chan Received // buffered: the reader never blocks on it
	err   error         // set before reply is closed on disconnect
}

var callPool = sync.Pool{New: func() any { return &call{reply: make(chan Received, 1)} }}

// NewClient returns an idle client.
func NewClient(cfg Config) *Client {
	c := &Client{cfg: cfg, calls: make(map[uint64]*call), listeners: make(map[*Listener]struct{})}
	c.sess = transport.New(transport.Config[Received, *ClientMachine]{
		Name:   cfg.Name,
		Logger: cfg.Logger,
		NewMachine: func() *ClientMachine {
			mc := c.cfg.Machine
			mc.IDBase = c.lastID.Load()
			// A new connection: its handshake has not finished. (The
			// machine is made before the read loop starts, so the
			// channels exist before KindReady is consumed or the
			// connection ends.)
			c.mu.Lock()
			c.ready = make(chan struct{})
			c.done = make(chan struct{})
			c.mu.Unlock()
			return NewClientMachine(mc)
		},
		Handshake: c.handshake,
		Consume:   c.consume,
		OnEnd:     c.onEnd,
	})
	return c
}

// handshake waits until the machine reports the handshake finished, or
// the session ends.
func (c *Client) handshake(ctx context.Context, s *transport.Session[Received, *ClientMachine]) error {
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
	done := c.done
	c.mu.Unlock()
	c.endAll(err)
	close(done)
}

// consume routes what the machine delivers. It runs on the session's read
// loop (or a Do caller) with the session's lock held: nothing here blocks.
func (c *Client) consume(r Received) {
	switch r.Kind {
	case KindGreeting:
		c.mu.Lock()
		c.greeting = r.Greeting
		c.mu.Unlock()
	case KindReady:
		c.mu.Lock()
		close(c.ready)
		c.mu.Unlock()
	case KindReply:
		c.mu.Lock()
		cl := c.calls[r.ID]
		delete(c.calls, r.ID)
		c.mu.Unlock()
		if cl != nil {
			cl.reply <- r // buffered, and one reply per id: never blocks
		}
	case KindEvent:
		c.mu.Lock()
		for l := range c.listeners {
			l.offer(r.Event)
		}
		c.mu.Unlock()
	case KindIDLessError:
		c.log().Warn("qmp: error without id while no command was pending",
			"class", r.Response.Error.Class, "desc", r.Response.Error.Desc)
	}
}

// ParseAddress turns "unix:/path", "tcp:host:port", "ws://host/path",
// "wss://host/path" (or a bare "/path") into an endpoint: a transport.Dialer
// that is also a transport.ListenOpener.
func ParseAddress(addr string) (transport.Dialer, error) {
	switch {
	case strings.HasPrefix(addr, "ws://"), strings.HasPrefix(addr, "wss://"):
		return ws.Endpoint{URL: addr}, nil
	case strings.HasPrefix(addr, "unix:"):
		return unix.Endpoint{Path: strings.TrimPrefix(addr, "unix:")}, nil
	case strings.HasPrefix(addr, "tcp:"):
		return tcp.Endpoint{Address: strings.TrimPrefix(addr, "tcp:")}, nil
	case strings.HasPrefix(addr, "/"):
		return unix.Endpoint{Path: addr}, nil
	}
	return nil, fmt.Errorf("qmp: address %q is none of unix:PATH, tcp:HOST:PORT, ws://HOST/PATH, wss://HOST/PATH", addr)
}

// Connect dials addr (see ParseAddress) and performs the QMP
// handshake. On failure the client is idle again and the error says which
// phase failed (a *transport.ConnectError wrapping the cause).
func (c *Client) Connect(ctx context.Context, addr string) error {
	d, err := ParseAddress(addr)
	if err != nil {
		return err
	}
	return c.ConnectDialer(ctx, d)
}

// ConnectDialer is Connect with any transport.Dialer.
func (c *Client) ConnectDialer(ctx context.Context, d transport.Dialer) error {
	err := c.sess.Connect(ctx, d)
	if err != nil {
		c.joinWatcher()
	}
	return err
}

// joinWatcher waits until the current (or last) connection's end was
// handled.
func (c *Client) joinWatcher() {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done != nil {
		<-done
	}
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
func (c *Client) Greeting() *Greeting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.greeting
}

// State returns the session's runstate.
func (c *Client) State() transport.Runstate { return c.sess.State() }

// Session returns the underlying session (for WaitState, Changed, Exec).
func (c *Client) Session() *transport.Session[Received, *ClientMachine] { return c.sess }

// Disconnect ends the session: pending executes fail with ErrDisconnected
// and listeners end. It returns the error that broke the session, if any.
func (c *Client) Disconnect(ctx context.Context) error {
	err := c.sess.Disconnect(ctx)
	c.joinWatcher()
	return err
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
		return fmt.Errorf("qmp: decoding the result of %s: %w", cmd, err)
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
		return nil, fmt.Errorf("qmp: encoding the arguments of %s: %w", cmd, err)
	}
	cl := callPool.Get().(*call)
	var id uint64
	var ferr error
	err = c.sess.Do(ctx, func(m *ClientMachine) error {
		if oob {
			id, ferr = m.ExecuteOOB(cmd, raw)
		} else {
			id, ferr = m.Execute(cmd, raw)
		}
		if ferr != nil {
			return ferr
		}
		c.lastID.Store(m.LastID())
		c.mu.Lock()
		c.calls[id] = cl
		c.mu.Unlock()
		return nil
	})
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
		callPool.Put(cl)
		if r.Response.Error != nil {
			return nil, &ExecuteError{Command: cmd, Arguments: append(json.RawMessage(nil), args...),
				Info: *r.Response.Error, Reply: r.Response.Raw}
		}
		return r.Response.Return, nil
	default: // ctx ended
		c.mu.Lock()
		_, pending := c.calls[id]
		delete(c.calls, id)
		c.mu.Unlock()
		if pending {
			_ = c.sess.Do(context.Background(), func(m *ClientMachine) error { m.Cancel(id); return nil })
			callPool.Put(cl)
		} // else the reader is handing it a reply or the end of the session closing it: do not reuse
		return nil, ctx.Err()
	}
}

// ParseListenAddress turns "unix:/path" or "tcp:host:port" into a listening
// endpoint, for QEMU started in client mode (-qmp unix:/path without
// server=on) that connects to us.
func ParseListenAddress(addr string) (transport.ListenOpener, error) {
	d, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	return d.(transport.ListenOpener), nil
}

// StartServer opens a listening socket at addr and returns without waiting:
// launch QEMU pointing at it, then call Accept. The split avoids racing the
// peer for the socket.
func (c *Client) StartServer(ctx context.Context, addr string) error {
	lo, err := ParseListenAddress(addr)
	if err != nil {
		return err
	}
	return c.sess.StartServer(ctx, lo)
}

// Accept waits for the peer on the socket opened by StartServer, then
// performs the QMP handshake over that connection.
func (c *Client) Accept(ctx context.Context) error {
	err := c.sess.Accept(ctx)
	if err != nil {
		c.joinWatcher()
	}
	return err
}

// ExecuteWithFiles is Execute with files passed to the server over a unix
// socket (SCM_RIGHTS), for getfd and add-fd. The descriptors travel with a
// single space written just before the command (whitespace between QMP
// messages), and such executes are serialised so another goroutine's command
// cannot take them. The files stay owned by the caller. It does not need the
// oob capability.
func (c *Client) ExecuteWithFiles(ctx context.Context, cmd string, args any, files ...*os.File) (json.RawMessage, error) {
	c.fdMu.Lock()
	defer c.fdMu.Unlock()
	if err := c.sess.Exec(ctx, unix.PassFDs([]byte(" "), files...)); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &disconnectedError{cause: err}
	}
	return c.Execute(ctx, cmd, args)
}
