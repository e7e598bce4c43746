// Package eventloop shows the use case the sans-IO design exists for: ONE
// goroutine drives thousands of QMP client machines (qmp.ClientMachine) over
// non-blocking unix sockets with epoll — no goroutine per connection, one
// read buffer for all of them.
//
// The machines never touch a socket, so the loop owns all I/O: it reads
// whatever a ready socket holds into its shared buffer, feeds the machine,
// and carries out the actions (Send: write, queueing what the socket does
// not take until EPOLLOUT; Deliver: call the command's callback). An idle
// connection costs its machine, its file descriptor and its bookkeeping.
//
// Linux only (epoll). A Loop is not safe for concurrent use: everything,
// including Execute, happens on the goroutine that calls Poll — the callbacks
// run there too, so they may call Execute.
package eventloop

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/qmp"
)

// ReplyFunc receives the reply to one Execute, or the error that ended its
// connection before the reply came. The Response owns its memory.
type ReplyFunc func(qmp.Response, error)

// ErrClosed is the error callbacks receive when their connection ends.
var ErrClosed = errors.New("eventloop: connection closed")

// conn is one QMP connection: a socket, its machine and what waits on it.
type conn struct {
	fd      int
	m       *qmp.ClientMachine
	out     []byte // bytes the socket did not take yet
	ready   bool
	err     error
	pending map[uint64]ReplyFunc
}

// Loop is an epoll loop driving QMP client machines.
type Loop struct {
	epfd   int
	conns  map[int]*conn // by fd
	buf    []byte        // the one read buffer, shared by every connection
	events []unix.EpollEvent
	ready  int
	// OnReady, when set, is called once per connection when its handshake
	// is over (on the loop goroutine).
	OnReady func(id int)
}

// New returns an empty loop with a read buffer of 64 KiB.
func New() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventloop: epoll_create1: %w", err)
	}
	return &Loop{epfd: epfd, conns: make(map[int]*conn), buf: make([]byte, 64<<10),
		events: make([]unix.EpollEvent, 256)}, nil
}

// Dial connects to the QMP server listening on the unix socket path and
// returns the connection's id (its file descriptor, so an id may be reused
// after its connection ended). The connect itself blocks (a unix connect
// only waits for the listener's backlog); everything after it — greeting,
// negotiation, commands — runs in Poll.
func (l *Loop) Dial(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("eventloop: socket: %w", err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err == nil {
		// Edge-triggered: each socket is registered once; the loop reads
		// until EAGAIN and writes until EAGAIN, so no event is lost and no
		// epoll_ctl is needed when output backs up.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		unix.Close(fd)
		return 0, fmt.Errorf("eventloop: connect %s: %w", path, err)
	}
	l.conns[fd] = &conn{fd: fd, m: qmp.NewClientMachine(qmp.ClientMachineConfig{}), pending: make(map[uint64]ReplyFunc)}
	return fd, nil
}

// Len returns the number of open connections.
func (l *Loop) Len() int { return len(l.conns) }

// Ready returns how many connections have completed their handshake.
func (l *Loop) Ready() int { return l.ready }

// Execute queues cmd with args (a JSON object or nil) on connection id;
// done is called from Poll with the reply. Commands issued before the
// handshake is over are held by the machine and sent right after it.
func (l *Loop) Execute(id int, cmd string, args []byte, done ReplyFunc) error {
	c, ok := l.conns[id]
	if !ok {
		return fmt.Errorf("eventloop: no connection %d", id)
	}
	if c.err != nil {
		return c.err
	}
	qid, err := c.m.Execute(cmd, args)
	if err != nil {
		return err
	}
	c.pending[qid] = done
	l.drive(c)
	return c.err
}

// Poll waits up to timeoutMs milliseconds (-1: forever) for sockets to be
// ready, serves them, and returns how many events it handled.
func (l *Loop) Poll(timeoutMs int) (int, error) {
	n, err := unix.EpollWait(l.epfd, l.events, timeoutMs)
	if err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("eventloop: epoll_wait: %w", err)
	}
	for _, ev := range l.events[:n] {
		c, ok := l.conns[int(ev.Fd)]
		if !ok {
			continue
		}
		if ev.Events&unix.EPOLLOUT != 0 {
			l.flush(c)
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.read(c)
		}
	}
	return n, nil
}

// read drains the socket into the shared buffer, feeding the machine after
// every read (the machine may reference the buffer only until Next returns
// WantMore, which drive reaches before the next read).
func (l *Loop) read(c *conn) {
	for c.err == nil {
		n, err := unix.Read(c.fd, l.buf)
		switch {
		case n > 0:
			c.m.Feed(l.buf[:n])
			l.drive(c)
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
		case err != nil:
			l.fail(c, err)
			return
		default: // end of stream: the machine ends the connection
			c.m.FeedEOF()
			l.drive(c)
			return
		}
	}
}

// drive carries out the machine's actions until it wants more.
func (l *Loop) drive(c *conn) {
	for c.err == nil {
		a := c.m.Next()
		switch a.Kind {
		case action.KindWantMore:
			return
		case action.KindSend:
			l.write(c, a.Bytes)
		case action.KindDeliver:
			switch a.Value.Kind {
			case qmp.ReceivedKindReady:
				c.ready = true
				l.ready++
				if l.OnReady != nil {
					l.OnReady(c.fd)
				}
			case qmp.ReceivedKindReply:
				if done, ok := c.pending[a.Value.ID]; ok {
					delete(c.pending, a.Value.ID)
					done(a.Value.Response, nil)
				}
			}
		case action.KindError:
			if errors.Is(a.Err, io.EOF) {
				l.fail(c, ErrClosed) // the server ended the stream cleanly
			} else {
				l.fail(c, a.Err)
			}
		}
	}
}

// write sends p, or queues what the socket does not take. p is valid only
// until the machine's next call, so the remainder is copied.
func (l *Loop) write(c *conn, p []byte) {
	if len(c.out) > 0 {
		c.out = append(c.out, p...)
		return
	}
	for len(p) > 0 {
		n, err := unix.Write(c.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			c.out = append(c.out, p...)
			return
		}
		l.fail(c, err)
		return
	}
}

// flush writes queued output once the socket takes more.
func (l *Loop) flush(c *conn) {
	for len(c.out) > 0 && c.err == nil {
		n, err := unix.Write(c.fd, c.out)
		switch {
		case n > 0:
			c.out = c.out[:copy(c.out, c.out[n:])]
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
		default:
			l.fail(c, err)
		}
	}
	if len(c.out) == 0 {
		c.out = nil // an idle connection keeps no buffer
	}
}

// fail ends connection c: its callbacks get err, its socket is closed.
func (l *Loop) fail(c *conn, err error) {
	if c.err != nil {
		return
	}
	c.err = err
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	delete(l.conns, c.fd)
	if c.ready {
		l.ready--
	}
	for id, done := range c.pending {
		delete(c.pending, id)
		done(qmp.Response{}, fmt.Errorf("%w: %v", ErrClosed, err))
	}
}

// Close closes every connection (their pending callbacks get ErrClosed) and
// the epoll descriptor.
func (l *Loop) Close() error {
	for _, c := range l.conns {
		l.fail(c, ErrClosed)
	}
	return unix.Close(l.epfd)
}
