package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

type sess = transport.Session[string, *lenmsg.Machine]
type cfg = transport.Config[string, *lenmsg.Machine]

// leakCheck fails the test if any goroutine it started outlives it.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

var quiet = slog.New(slog.DiscardHandler)

func newSession(c cfg) *sess {
	if c.NewMachine == nil {
		c.NewMachine = func() *lenmsg.Machine { return &lenmsg.Machine{} }
	}
	if c.Logger == nil {
		c.Logger = quiet
	}
	return transport.New(c)
}

func echoSession(c cfg) *sess {
	c.NewMachine = func() *lenmsg.Machine { return &lenmsg.Machine{Echo: true} }
	return newSession(c)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startPipe starts s over one end of a net.Pipe and returns the other end.
func startPipe(t *testing.T, s *sess) net.Conn {
	t.Helper()
	a, b := net.Pipe()
	require.NoError(t, s.Start(testCtx(t), a))
	t.Cleanup(func() { b.Close() })
	return b
}

func send(ctx context.Context, s *sess, payload string) error {
	return s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(payload)) })
}

func writeMsg(t *testing.T, c net.Conn, payload string) {
	t.Helper()
	_, err := c.Write(lenmsg.Append(nil, []byte(payload)))
	require.NoError(t, err)
}

func readMsg(c io.Reader) (string, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", err
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, p); err != nil {
		return "", err
	}
	return string(p), nil
}

// pipeListener is an in-memory net.Listener: Dial makes a net.Pipe and hands
// one end to Accept.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn, 4), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		// Connections queued but never accepted are closed, as the kernel
		// resets a closed listener's backlog.
		for {
			select {
			case c := <-l.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) Dial(ctx context.Context) (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, errors.New("connection refused")
	default:
	}
	a, b := net.Pipe()
	select {
	case l.conns <- a:
		return b, nil
	case <-l.closed:
		return nil, errors.New("connection refused")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Listen(context.Context) (net.Listener, error) { return l, nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// faultConn is a net.Conn whose reads and writes fail on demand.
type faultConn struct {
	net.Conn
	readErr  chan error // a value here makes the pending Read fail with it
	writeErr error      // every Write fails with this, if set
}

func (c *faultConn) Read(p []byte) (int, error) {
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		n, err := c.Conn.Read(p)
		ch <- result{n, err}
	}()
	select {
	case r := <-ch:
		return r.n, r.err
	case err := <-c.readErr:
		c.Conn.Close()
		<-ch
		return 0, err
	}
}

func (c *faultConn) Write(p []byte) (int, error) {
	if c.writeErr != nil {
		return 0, c.writeErr
	}
	return c.Conn.Write(p)
}

// signalListener closes accepting when Accept is first called.
type signalListener struct {
	*pipeListener
	accepting chan struct{}
	once      sync.Once
}

func (l *signalListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.accepting) })
	return l.pipeListener.Accept()
}

func (l *signalListener) Listen(context.Context) (net.Listener, error) { return l, nil }
