package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/action"
)

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
	writing       bool // the write loop owns a batch
	directWriting bool // a caller writes a batch directly, without the lock
	writerStarted bool
	direct        TryWriter     // nil unless the stream can write without blocking
	streamPending bool          // the stream holds bytes TryWrite took: the write loop calls Write(nil)
	wake          chan struct{} // capacity 1: pokes the write loop

	queue []T // delivered values; queue[head:] wait for Recv
	head  int

	ready        chan struct{} // closed and replaced when a value is queued, if readyWaiters > 0
	readyWaiters int
	room         chan struct{} // closed and replaced when output or queue shrinks, if roomWaiters > 0
	roomWaiters  int

	// The reader role (reader.go): who reads the stream and feeds the
	// machine, the read loop or a waiting caller.
	reader       readerRole
	rbuf         []byte // the read buffer, used by the holder of the reader role
	readBufSize  int    // len(rbuf)
	followers    []*waiter
	spareWaiters []*waiter
	idle         *time.Timer   // resumes the read loop once the role stayed free; made by the read loop
	idleArmed    bool          // idle is armed
	loopWake     chan struct{} // capacity 1: the role was handed to the read loop
	releasedAt   time.Duration // monotonic() at the last release of the role
	leadFull     bool          // a recent read filled the buffer: the peer streams
	partialRun   int           // reads since the last one that filled the buffer
	freed        uint64        // count of releases of the role to free
	armedAt      uint64        // freed when idle was armed
	resumeNow    bool          // a follower that cannot lead waits: the loop takes a free role at once
	deadlines    bool          // nc takes read deadlines: a leading caller's ctx can interrupt its read
	kickDone     <-chan struct{}
	kickStop     func() bool     // unregisters the context.AfterFunc watching kickDone's context
	leadingDone  <-chan struct{} // Done of the context of the caller now reading, if any
	kicked       bool            // its read was interrupted by a read deadline in the past

	peerEOF    bool  // HalfClose: the peer ended its side; the read loop stopped
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
	l := &link[T, M]{
		s:      s,
		nc:     nc,
		m:      m,
		retain: retain,
		direct: newDirectWriter(nc),

		readBufSize: min(initialReadBuffer, s.cfg.ReadBufferSize),
		reader:      roleLoop,
		releasedAt:  monotonic(),
		deadlines:   nc.SetReadDeadline(time.Time{}) == nil,
		stop:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
		loopWake:    make(chan struct{}, 1),
		ready:       make(chan struct{}),
		room:        make(chan struct{}),
	}
	l.rbuf = make([]byte, l.readBufSize)
	return l
}

func (l *link[T, M]) queued() int { return len(l.queue) - l.head }

// drainLocked calls Next until WantMore or Error and carries out the actions.
func (l *link[T, M]) drainLocked() {
	cfg := &l.s.cfg
	for {
		a := l.m.Next()
		switch a.Kind {
		case action.KindWantMore:
			if len(l.out) > 0 && len(l.out) <= min(directMax, cfg.MaxPendingOutput) && l.s.doers.Load() > 0 {
				// Another Do is about to run the machine, or a
				// Cork holds output back: that Do or the last
				// Uncork writes this output with its own, one
				// syscall for all. corked is set before doers is
				// read again (Uncork does the reverse), so one of
				// the two sees the other.
				l.s.corked.Store(true)
				if l.s.doers.Load() > 0 {
					return
				}
				l.s.corked.Store(false)
			}
			l.writeOutLocked()
			return
		case action.KindSend:
			if len(a.Bytes) == 0 {
				continue
			}
			if cfg.OnOutbound != nil {
				cfg.OnOutbound(a.Bytes)
			}
			// Gathered; written or handed to the write loop at WantMore.
			l.out = append(l.out, a.Bytes...)
		case action.KindDeliver:
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
		case action.KindError:
			err := a.Err
			if err == nil {
				err = fmt.Errorf("transport: machine returned an error action without an error")
			} else if errors.Is(err, io.EOF) {
				err = ErrPeerClosed // the machine's clean end after FeedEOF
			}
			l.failLocked(err)
			return
		default:
			l.failLocked(fmt.Errorf("transport: machine returned an unknown action %v", a.Kind))
			return
		}
	}
}

// writeOutLocked writes the pending output from the caller if it is small
// and nothing is queued before it, else hands it to the write loop. While
// another caller writes directly, that caller writes this output too once
// its write returns.
func (l *link[T, M]) writeOutLocked() {
	if len(l.out) == 0 || l.stopped {
		return
	}
	if len(l.out) <= directMax && l.canWriteDirectLocked() {
		l.writeDirectLocked()
	} else if !l.writing && !l.directWriting && len(l.ops) == 0 {
		l.wakeWriter()
	}
}

// directMax is the most output written from the caller. Larger output
// goes to the write loop, which overlaps the caller's copying with its own
// writing and writes bigger batches: measured faster for bulk transfer.
const directMax = 16 << 10

// canWriteDirectLocked reports whether output may be written from the
// caller: the stream can write without blocking and the write loop owns nothing, so
// no byte queued earlier can be overtaken.
func (l *link[T, M]) canWriteDirectLocked() bool {
	return l.direct != nil && !l.writing && !l.directWriting && len(l.ops) == 0 && !l.stopped
}

// writeDirectLocked writes the pending output from the calling goroutine
// with non-blocking attempts, without holding the session's lock during
// the syscall: callers that produce output meanwhile only append it, and
// this caller writes it after its own, several callers' messages in one
// syscall. It never blocks: a full socket buffer costs one failed write(2),
// and what the kernel did not take goes to the write loop. It is called and
// returns with the lock held, but releases it while writing.
func (l *link[T, M]) writeDirectLocked() {
	s := l.s
	for {
		buf := l.out
		l.out = l.spare[:0]
		l.directWriting = true
		s.mu.Unlock()
		n, pending := l.direct.TryWrite(buf)
		s.mu.Lock()
		l.directWriting = false
		full := n == len(buf) && !pending
		if n < len(buf) {
			// Unwritten bytes go first, before what was appended
			// meanwhile; an Exec queued meanwhile moves with them.
			rest := copy(buf, buf[n:])
			for _, op := range l.ops {
				op.at += rest
			}
			buf = append(buf[:rest], l.out...)
			l.out, l.spare = buf, l.out[:0]
		} else {
			l.spare = buf[:0]
		}
		if pending {
			l.streamPending = true
		}
		if n > 0 && l.roomWaiters > 0 {
			l.notifyRoomLocked()
		}
		if full && len(l.out) > 0 && len(l.out) <= directMax && l.canWriteDirectLocked() {
			continue // written in full: what others queued meanwhile follows
		}
		if (len(l.out) > 0 || len(l.ops) > 0 || l.streamPending) && !l.stopped {
			l.wakeWriter()
		}
		return
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
	if l.kickStop != nil {
		l.kickStop()
		l.kickStop = nil
	}
	if s := l.s; s.c == l && s.state == RunstateRunning {
		s.setStateLocked(RunstateDisconnecting)
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

// errGaveUp is waitRoom's result when its done channel closed first.
var errGaveUp = errors.New("transport: gave up waiting for room")

// waitRoom waits until pending output is within its limit (and, for the read
// loop, the delivery queue too). It returns nil when there is room, the
// session's end error if the link stopped, or errGaveUp once done is closed.
// done is the caller's context (Do) or the link's own stop channel (the read
// loop, which lives exactly as long as the link): no wait here outlives both
// the link and its caller.
func (l *link[T, M]) waitRoom(done <-chan struct{}, reader bool) error {
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
		gaveUp := false
		select {
		case <-ch:
		case <-l.stop:
		case <-done:
			gaveUp = true
		}
		s.mu.Lock()
		l.roomWaiters--
		if gaveUp && !l.stopped {
			s.mu.Unlock()
			return errGaveUp
		}
	}
}

// flush waits until all queued output is written. It returns false if ctx
// ended first; true if flushed or if the link stopped.
func (l *link[T, M]) flush(ctx context.Context) bool {
	s := l.s
	s.mu.Lock()
	l.writeOutLocked() // output a Cork holds goes now
	for {
		if l.stopped || (len(l.out) == 0 && len(l.ops) == 0 && !l.writing && !l.directWriting) {
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
		// A caller writing directly owns the stream's writing side
		// until it wakes this loop for what it leaves.
		for !l.stopped && (l.directWriting || len(l.out) == 0 && len(l.ops) == 0 && !l.streamPending) {
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
		buf, ops, pending := l.out, l.ops, l.streamPending
		l.out, l.ops = l.spare[:0], l.spareOps[:0]
		l.writing, l.streamPending = true, false
		s.mu.Unlock()

		err := l.write(buf, ops, pending)

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

// write writes buf, running each op at its offset. If the stream holds
// bytes a TryWrite took (pending) and buf is empty, a Write of no bytes
// sends them; any other Write sends them first anyway.
func (l *link[T, M]) write(buf []byte, ops []*execOp, pending bool) error {
	if pending && len(buf) == 0 {
		if _, err := l.nc.Write(nil); err != nil {
			return err
		}
	}
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
