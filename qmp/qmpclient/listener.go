package qmpclient

import (
	"context"
	"errors"
	"sync"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transport"
)

// DefaultListenerQueue is the queue length of a Listener whose options leave
// it zero.
const DefaultListenerQueue = 64

// ListenOptions chooses the events a Listener receives.
type ListenOptions struct {
	// Names, if not empty, keeps only events with one of these names.
	Names []string
	// Filter, if set, keeps only events it returns true for. It runs on the
	// client's dispatcher with the client's lock held: it must be quick, must
	// not block and must not call the Client.
	Filter func(qmp.Event) bool
	// Queue is the maximum number of events waiting in the listener; zero
	// means DefaultListenerQueue. When full, the oldest event is dropped
	// (and counted) to make room: a slow listener never stalls the client.
	Queue int
}

// ErrListenerClosed is returned by Next after Close.
var ErrListenerClosed = errors.New("qmpclient: listener closed")

// Listener receives the events of a Client from the moment Listen returns
// until Close or the end of the session. It is safe for concurrent use.
type Listener struct {
	c    *Client
	opts ListenOptions

	mu      sync.Mutex
	queue   []qmp.Event // ring buffer
	head, n int
	dropped uint64
	err     error         // set when the listener ended
	wake    chan struct{} // one token: an event or the end arrived

	closed    context.Context // done after Close: interrupts a wait that reads
	stopWaits context.CancelFunc
}

// Listen registers a listener. Listen before executing the command whose
// event you wait for, so the event cannot slip by.
func (c *Client) Listen(opts ListenOptions) *Listener {
	if opts.Queue <= 0 {
		opts.Queue = DefaultListenerQueue
	}
	l := &Listener{c: c, opts: opts, queue: make([]qmp.Event, opts.Queue), wake: make(chan struct{}, 1)}
	l.closed, l.stopWaits = context.WithCancel(context.Background())
	c.mu.Lock()
	c.listeners[l] = struct{}{}
	c.mu.Unlock()
	return l
}

// offer queues ev if the listener wants it; it never blocks.
func (l *Listener) offer(ev qmp.Event) {
	if len(l.opts.Names) > 0 {
		found := false
		for _, n := range l.opts.Names {
			if n == ev.Name {
				found = true
				break
			}
		}
		if !found {
			return
		}
	}
	if l.opts.Filter != nil && !l.opts.Filter(ev) {
		return
	}
	l.mu.Lock()
	if l.err == nil {
		if l.n == len(l.queue) {
			l.queue[l.head] = qmp.Event{}
			l.head = (l.head + 1) % len(l.queue)
			l.n--
			l.dropped++
		}
		l.queue[(l.head+l.n)%len(l.queue)] = ev
		l.n++
	}
	l.mu.Unlock()
	l.signal()
}

func (l *Listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Listener) end(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.signal()
}

// Next returns the next event, waiting until one arrives, ctx ends, the
// listener is closed (ErrListenerClosed) or the session ends (an error
// matching ErrDisconnected). Events queued before the end are returned first.
func (l *Listener) Next(ctx context.Context) (qmp.Event, error) {
	for {
		l.mu.Lock()
		if l.n > 0 {
			ev := l.queue[l.head]
			l.queue[l.head] = qmp.Event{}
			l.head = (l.head + 1) % len(l.queue)
			l.n--
			l.mu.Unlock()
			return ev, nil
		}
		err := l.err
		l.mu.Unlock()
		if err != nil {
			l.signal() // let other waiters see the end too
			return qmp.Event{}, err
		}
		if err := l.waitWake(ctx); err != nil {
			return qmp.Event{}, err
		}
	}
}

// waitWake waits for the listener's token, or until ctx ends (its error) or
// the listener is closed. While it waits and nobody reads the stream, the
// waiting goroutine reads it and routes what arrives itself
// (transport.Await), as an Execute does, so an event reaches a waiting
// listener at once rather than when the read loop resumes
// (transport.Config.IdleResume). Close interrupts such a read.
func (l *Listener) waitWake(ctx context.Context) error {
	select {
	case <-l.wake:
		return nil
	default:
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.closed, cancel)
	defer stop()
	_, _, err := transport.Await(wctx, l.c.sess, l.wake)
	if err != nil && ctx.Err() == nil {
		return nil // closed: the caller finds the listener's error
	}
	return err
}

// Wait blocks until an event is queued, without taking it, or until Next
// would fail (ctx ends, the listener is closed, the session ends), returning
// that error. It lets a caller that prints or handles events under its own
// lock wait outside that lock and then take the events under it, so events
// taken by another goroutine cannot be reordered with its own output.
func (l *Listener) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		n, err := l.n, l.err
		l.mu.Unlock()
		if n > 0 {
			l.signal() // keep the token for a concurrent Next or Wait
			return nil
		}
		if err != nil {
			l.signal()
			return err
		}
		if err := l.waitWake(ctx); err != nil {
			return err
		}
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (l *Listener) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Close unregisters the listener; queued events are discarded.
func (l *Listener) Close() {
	l.c.mu.Lock()
	delete(l.c.listeners, l)
	l.c.mu.Unlock()
	l.mu.Lock()
	l.n = 0
	l.mu.Unlock()
	l.end(ErrListenerClosed)
	l.stopWaits()
}

// WaitEvent waits for the first event named name (and accepted by filter, if
// not nil) that arrives after the call. To wait for an event caused by a
// command without a race, use Listen before executing it instead.
func (c *Client) WaitEvent(ctx context.Context, name string, filter func(qmp.Event) bool) (qmp.Event, error) {
	l := c.Listen(ListenOptions{Names: []string{name}, Filter: filter, Queue: 1})
	defer l.Close()
	return l.Next(ctx)
}
