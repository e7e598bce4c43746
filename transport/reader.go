package transport

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/wirereactor/wirereactor/action"
)

// The reader role: one goroutine at a time reads the stream and feeds what
// it read to the machine. At first it is the read loop. When a caller waits
// for what the machine delivers (Recv, Await) and nobody reads, the caller
// takes the role and reads and drives the machine itself (the leader), so
// a value meant for it costs no goroutine hand-off; callers that arrive
// while someone reads wait (followers) and are woken by the delivery. When
// the leader has what it waited for, it hands the role to a follower if
// one waits, else leaves it free. The read loop hands the role to the first
// follower after each read, and takes a free role back once it stayed free
// for IdleResume, so a connection nobody waits on is read as before (events,
// the end of the stream) while a caller that waits again within IdleResume
// finds the role free.

type readerRole uint8

const (
	roleFree   readerRole = iota // nobody reads
	roleLoop                     // the read loop reads
	roleCaller                   // a waiting caller reads (or was handed the role)
)

// waiter is one waiting caller (Recv, Await).
type waiter struct {
	turn     chan struct{} // capacity 1: poked when the role is handed over
	holds    bool          // this caller holds the reader role
	follower bool          // in link.followers
}

// errInterrupted is readOnceLocked's result when the caller's context
// interrupted its read.
var errInterrupted = errors.New("transport: read interrupted by the caller's context")

// pastDeadline interrupts a blocked Read.
var pastDeadline = time.Unix(1, 0)

// monoEpoch is the origin of monotonic.
var monoEpoch = time.Now()

// monotonic reads the monotonic clock: one clock read, where time.Now
// makes two (wall and monotonic). It is read once per exchange of the
// reader role, and the read is measurable beside a 64-byte round trip.
func monotonic() time.Duration { return time.Since(monoEpoch) }

func (l *link[T, M]) getWaiterLocked() *waiter {
	if n := len(l.spareWaiters); n > 0 {
		w := l.spareWaiters[n-1]
		l.spareWaiters = l.spareWaiters[:n-1]
		return w
	}
	return &waiter{turn: make(chan struct{}, 1)}
}

// leaveLocked ends w's wait: it stops following, passes the reader role on
// if it held it, and goes back to the spare list.
func (l *link[T, M]) leaveLocked(w *waiter) {
	if w.follower {
		for i, f := range l.followers {
			if f == w {
				l.followers = append(l.followers[:i], l.followers[i+1:]...)
				break
			}
		}
		w.follower = false
	}
	if w.holds {
		w.holds = false
		l.releaseRoleLocked()
	}
	select {
	case <-w.turn:
	default:
	}
	l.spareWaiters = append(l.spareWaiters, w)
}

// releaseRoleLocked hands the reader role to the first follower, or leaves
// it free and arms the read loop's idle timer.
func (l *link[T, M]) releaseRoleLocked() {
	now := monotonic()
	since := now - l.releasedAt
	l.releasedAt = now
	if len(l.followers) > 0 {
		w := l.followers[0]
		l.followers = append(l.followers[:0], l.followers[1:]...)
		w.follower = false
		w.holds = true
		l.reader = roleCaller
		select {
		case w.turn <- struct{}{}:
		default:
		}
		return
	}
	if !l.stopped && (l.leadFull || since >= l.s.cfg.IdleResume) {
		// A slow exchange (the caller would probably not be back
		// within IdleResume, so the loop takes the role now rather
		// than after a timer that would fire during the next one), or
		// a peer that streams (a recent read filled the buffer): the
		// loop reads on, so the peer is not held back until the timer
		// fires. The hold is measured from the previous release, with
		// one clock read per exchange: a wait that began IdleResume or
		// more after that release counts as slow too, which costs one
		// hand-off at worst (such a caller usually finds the role with
		// the loop already).
		l.reader = roleLoop
		select {
		case l.loopWake <- struct{}{}:
		default:
		}
		return
	}
	l.reader = roleFree
	l.freed++
	l.armIdleLocked(l.s.cfg.IdleResume)
}

// armIdleLocked arms the read loop's idle timer to fire after d unless it
// is armed already (or the loop has not made it yet: it takes a free role
// when it does). Arming a timer may wake a thread of the runtime, so the
// timer is not re-armed on every release: while callers take turns quickly
// it fires about once per IdleResume, and the loop takes the role if it
// stayed free the whole period, else arms it again. The role is taken back
// within 2×IdleResume of the last release.
func (l *link[T, M]) armIdleLocked(d time.Duration) {
	if l.stopped || l.idle == nil || (l.idleArmed && d > 0) {
		return
	}
	l.idleArmed, l.armedAt = true, l.freed
	l.idle.Reset(d)
}

// followLocked makes w a follower; if the role is free (w could not take
// it), the read loop takes it at once.
func (l *link[T, M]) followLocked(w *waiter) {
	if !w.follower {
		w.follower = true
		l.followers = append(l.followers, w)
	}
	if l.reader == roleFree {
		l.resumeNow = true
		l.armIdleLocked(0)
	}
}

// leadLocked reads the stream once for w if w holds the reader role or
// can take it, and reports whether it did. A caller can take a free role
// unless its context can end and the stream takes no read deadlines (its
// read could not be interrupted). It returns errInterrupted if ctx ended
// during the read.
func (l *link[T, M]) leadLocked(ctx context.Context, w *waiter) (bool, error) {
	if l.peerEOF {
		return false, nil
	}
	if !w.holds {
		if l.reader != roleFree || (ctx.Done() != nil && !l.deadlines) {
			return false, nil
		}
		if w.follower {
			l.leaveFollowersLocked(w)
		}
		l.reader, w.holds = roleCaller, true
	}
	return true, l.readOnceLocked(ctx)
}

func (l *link[T, M]) leaveFollowersLocked(w *waiter) {
	for i, f := range l.followers {
		if f == w {
			l.followers = append(l.followers[:i], l.followers[i+1:]...)
			break
		}
	}
	w.follower = false
}

// watchLocked arranges for the end of ctx to interrupt the read about to
// start, with a read deadline in the past: one context.AfterFunc per
// context, kept while the same context leads again.
func (l *link[T, M]) watchLocked(ctx context.Context) {
	done := ctx.Done()
	if l.kickDone != done {
		if l.kickStop != nil {
			l.kickStop()
		}
		l.kickDone = done
		l.kickStop = context.AfterFunc(ctx, func() { l.kick(done) })
	}
	l.leadingDone = done
}

// kick interrupts the read of the caller whose context's Done is done.
func (l *link[T, M]) kick(done <-chan struct{}) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.leadingDone == done && !l.kicked && !l.stopped {
		l.kicked = true
		_ = l.nc.SetReadDeadline(pastDeadline)
	}
}

// readOnceLocked is readLocked for a leading caller, whose ctx ends the
// read early (errInterrupted).
func (l *link[T, M]) readOnceLocked(ctx context.Context) error {
	if ctx.Done() == nil {
		return l.readLocked(false)
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	l.watchLocked(ctx)
	return l.readLocked(true)
}

// readLocked reads the stream once, as the holder of the reader role, and
// feeds the machine. It is called and returns with the session's lock held,
// and releases it while reading. If watch, the read runs under
// watchLocked's context, whose end interrupts it (errInterrupted). A read
// or machine error stops the link and closes the stream.
func (l *link[T, M]) readLocked(watch bool) error {
	s := l.s
	buf := l.rbuf
	s.mu.Unlock()
	n, err := l.nc.Read(buf)
	if n > 0 && s.cfg.OnInbound != nil {
		s.cfg.OnInbound(buf[:n])
	}
	s.mu.Lock()
	if watch {
		l.leadingDone = nil
		if l.kicked {
			l.kicked = false
			_ = l.nc.SetReadDeadline(time.Time{})
			if isTimeout(err) {
				err = nil
				if n == 0 {
					return errInterrupted
				}
			}
		}
	}
	if l.stopped {
		return nil
	}
	if n > 0 {
		// A peer that streams fills the buffer; eight short reads in a
		// row end that.
		if n == len(buf) {
			l.leadFull, l.partialRun = true, 0
		} else if l.partialRun++; l.partialRun >= 8 {
			l.leadFull = false
		}
		l.m.Feed(buf[:n])
		l.drainLocked()
		l.readBufSize = nextReadBuffer(len(buf), n, s.cfg.ReadBufferSize)
		if l.readBufSize != len(buf) {
			// The machine let go of buf at WantMore; values that
			// still alias it (without Retain) keep it alive.
			l.rbuf = make([]byte, l.readBufSize)
		}
	}
	if err != nil && !l.stopped {
		if errors.Is(err, io.EOF) && s.cfg.HalfClose && !peerGone(l.nc) {
			// Config.HalfClose: keep writing; the link ends with
			// Disconnect or a write error. Nobody reads any more.
			l.peerEOF = true
			if l.readyWaiters > 0 {
				close(l.ready)
				l.ready = make(chan struct{})
			}
			for _, w := range l.followers {
				select {
				case w.turn <- struct{}{}:
				default:
				}
			}
			return nil
		}
		if errors.Is(err, io.EOF) {
			// The machine reports a partial message as its own error,
			// which becomes the root cause.
			l.m.FeedEOF()
			l.drainLocked()
			err = ErrPeerClosed
		}
		// Recorded only if it is the first error and not a consequence
		// of our own close.
		l.failLocked(err)
	}
	if l.stopped {
		s.mu.Unlock()
		l.closeConn()
		s.mu.Lock()
	}
	return nil
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// initialReadBuffer is the read buffer's first size (or
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

// readLoop reads while it holds the reader role, hands the role to the
// first waiting caller after each read, and takes a free role back when
// its idle timer fires. It exits when the link stops.
func (l *link[T, M]) readLoop() {
	defer l.wg.Done()
	s := l.s
	if s.cfg.OnEnd != nil {
		defer l.reportEnd()
	}
	s.mu.Lock()
	for {
		if l.stopped {
			s.mu.Unlock()
			return
		}
		if l.peerEOF {
			// Config.HalfClose: the peer sends nothing more; the link
			// ends with Disconnect or a write error.
			s.mu.Unlock()
			<-l.stop
			return
		}
		if l.reader != roleLoop {
			if l.reader == roleFree && (l.idle == nil || l.resumeNow) {
				l.reader, l.resumeNow = roleLoop, false
				continue
			}
			if l.idle == nil {
				l.idle = time.NewTimer(l.s.cfg.IdleResume)
				l.idleArmed, l.armedAt = true, l.freed
			}
			c := l.idle.C
			s.mu.Unlock()
			fired := false
			select {
			case <-c:
				fired = true
			case <-l.loopWake:
			case <-l.stop:
			}
			s.mu.Lock()
			if !fired {
				continue // handed the role, or stopped
			}
			l.idleArmed = false
			switch {
			case l.reader != roleFree:
				// Held by a caller, perhaps for hours (a server's
				// handler waiting in Recv): its release arms the
				// timer again, or hands the role over at once.
			case l.freed == l.armedAt || l.resumeNow:
				// Free since the timer was armed, or a caller that
				// cannot lead waits: take it.
				l.reader, l.resumeNow = roleLoop, false
			default:
				l.armIdleLocked(l.s.cfg.IdleResume)
			}
			continue
		}
		_ = l.readLocked(false)
		if l.stopped {
			continue
		}
		if len(l.out) > s.cfg.MaxPendingOutput || l.queued() >= s.cfg.DeliverQueue {
			s.mu.Unlock()
			if l.waitRoom(l.stop, true) != nil {
				s.mu.Lock()
				continue
			}
			s.mu.Lock()
		}
		if len(l.followers) > 0 {
			l.releaseRoleLocked()
		}
	}
}

// Await waits for a value on ch, which the session's Config.Consume (or
// OnEnd) fills or closes: a reply routed to its caller, say. While it
// waits and nobody reads the stream, the calling goroutine reads it and
// drives the machine itself, so a value meant for it costs no goroutine
// hand-off (see the package documentation). It returns the value and true,
// or false once ch is closed, or ctx's error. When the session has no
// running connection it waits on ch and ctx alone: ch must be filled or
// closed by then (OnEnd runs when a connection ends).
func Await[V, T any, M action.Machine[T]](ctx context.Context, s *Session[T, M], ch <-chan V) (V, bool, error) {
	select {
	case v, ok := <-ch:
		return v, ok, nil
	default:
	}
	s.mu.Lock()
	l := s.c
	if l != nil && !l.stopped && !l.peerEOF {
		w := l.getWaiterLocked()
		for !l.stopped && !l.peerEOF {
			select {
			case v, ok := <-ch:
				l.leaveLocked(w)
				s.mu.Unlock()
				return v, ok, nil
			default:
			}
			led, err := l.leadLocked(ctx, w)
			if err != nil || ctx.Err() != nil {
				break
			}
			if led {
				continue
			}
			l.followLocked(w)
			s.mu.Unlock()
			select {
			case v, ok := <-ch:
				s.mu.Lock()
				l.leaveLocked(w)
				s.mu.Unlock()
				return v, ok, nil
			case <-w.turn:
			case <-l.stop:
			case <-ctx.Done():
			}
			s.mu.Lock()
			if ctx.Err() != nil {
				break
			}
		}
		l.leaveLocked(w)
	}
	s.mu.Unlock()
	var zero V
	select {
	case v, ok := <-ch:
		return v, ok, nil
	case <-ctx.Done():
		return zero, false, ctx.Err()
	}
}
