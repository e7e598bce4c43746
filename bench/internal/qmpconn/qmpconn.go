// Package qmpconn drives a qmp.ClientMachine over a net.Conn with one reader
// goroutine per connection: many goroutines may Execute at once, their
// commands pipelined on the connection and every reply handed to its own
// caller.
//
// It is the benchmarks' stand-in for the driven qmpclient.Client until that lands:
// the smallest correct goroutine-per-connection driver of the machine, no
// events, no reconnects.
package qmpconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/qmp"
)

// ErrClosed is returned by Execute once the connection is gone.
var ErrClosed = errors.New("qmpconn: connection closed")

// Conn is one QMP connection.
type Conn struct {
	c       net.Conn
	mu      sync.Mutex // guards m, pending, err and writes to c
	m       *qmp.ClientMachine
	pending map[uint64]chan qmp.Response
	err     error
	ready   chan struct{}
	done    chan struct{}
}

// Dial connects to a QMP server at network/addr and completes the
// handshake (greeting, qmp_capabilities).
func Dial(ctx context.Context, network, addr string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return New(ctx, c)
}

// New runs QMP over c and waits for the handshake.
func New(ctx context.Context, c net.Conn) (*Conn, error) {
	q := &Conn{c: c, m: qmp.NewClientMachine(qmp.ClientMachineConfig{}), pending: make(map[uint64]chan qmp.Response),
		ready: make(chan struct{}), done: make(chan struct{})}
	go q.read()
	select {
	case <-q.ready:
		return q, nil
	case <-q.done:
		return nil, fmt.Errorf("qmpconn: handshake: %w", q.failure())
	case <-ctx.Done():
		q.Close()
		return nil, ctx.Err()
	}
}

func (q *Conn) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// read feeds the machine until the connection ends, through a small read
// buffer (replies to query-status are ~80 bytes; larger ones take several
// reads, which the machine's decoder joins).
func (q *Conn) read() {
	defer close(q.done)
	var small [512]byte
	for {
		n, err := q.c.Read(small[:])
		if n > 0 {
			q.mu.Lock()
			q.m.Feed(small[:n])
			ferr := q.drainLocked()
			q.mu.Unlock()
			if ferr != nil {
				q.fail(ferr)
				return
			}
		}
		if err != nil {
			q.fail(err)
			return
		}
	}
}

// drainLocked carries out the machine's actions; q.mu is held.
func (q *Conn) drainLocked() error {
	for {
		a := q.m.Next()
		switch a.Kind {
		case action.KindWantMore:
			return nil
		case action.KindSend:
			if _, err := q.c.Write(a.Bytes); err != nil {
				return err
			}
		case action.KindDeliver:
			switch a.Value.Kind {
			case qmp.ReceivedKindReady:
				close(q.ready)
			case qmp.ReceivedKindReply:
				if ch, ok := q.pending[a.Value.ID]; ok {
					delete(q.pending, a.Value.ID)
					ch <- a.Value.Response
				}
			}
		case action.KindError:
			return a.Err
		}
	}
}

func (q *Conn) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	for id, ch := range q.pending {
		delete(q.pending, id)
		close(ch)
	}
	q.mu.Unlock()
	q.c.Close()
}

// Execute sends cmd with args (raw JSON object or nil) and waits for its
// reply. The returned Response owns its memory.
func (q *Conn) Execute(ctx context.Context, cmd string, args []byte) (qmp.Response, error) {
	ch := make(chan qmp.Response, 1)
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return qmp.Response{}, fmt.Errorf("%w: %v", ErrClosed, q.err)
	}
	id, err := q.m.Execute(cmd, args)
	if err == nil {
		q.pending[id] = ch
		err = q.drainLocked()
	}
	q.mu.Unlock()
	if err != nil {
		q.fail(err)
		return qmp.Response{}, fmt.Errorf("%w: %v", ErrClosed, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return qmp.Response{}, fmt.Errorf("%w: %v", ErrClosed, q.failure())
		}
		return r, nil
	case <-ctx.Done():
		q.mu.Lock()
		delete(q.pending, id)
		q.m.Cancel(id)
		q.mu.Unlock()
		return qmp.Response{}, ctx.Err()
	}
}

// Close closes the connection and waits for the reader.
func (q *Conn) Close() error {
	q.fail(ErrClosed)
	<-q.done
	return nil
}
