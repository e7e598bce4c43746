package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// goid returns the calling goroutine's id.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// echoPeer echoes every message it reads on c until c closes.
func echoPeer(t *testing.T, c net.Conn) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := readMsg(c)
			if err != nil {
				return
			}
			if _, err := c.Write(lenmsg.Append(nil, []byte(msg))); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}

// A caller waiting in Recv while nobody reads reads the stream and runs
// the machine itself: the reply is read on the caller's goroutine, not
// handed over by the read loop.
func TestRecvReadsOnTheCallersGoroutine(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var readBy atomic.Uint64
	s := newSession(cfg{
		OnInbound: func([]byte) { readBy.Store(goid()) },
		// However slow the machine, the read loop does not take the role back.
		IdleResume: time.Hour,
	})
	echoPeer(t, startPipe(t, s))
	me := goid()
	leading := 0
	for i := range 50 {
		require.NoError(t, send(ctx, s, fmt.Sprint(i)))
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), v)
		if readBy.Load() == me {
			leading++
		}
	}
	// The first two replies may come from the read loop (it held the role).
	require.GreaterOrEqual(t, leading, 48, "replies read by the caller")
	require.NoError(t, s.Disconnect(ctx))
}

// Await is Recv for values routed by Consume.
func TestAwaitReadsOnTheCallersGoroutine(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var readBy atomic.Uint64
	var mu sync.Mutex
	var replies chan string
	s := newSession(cfg{
		// However slow the machine, the read loop does not take the role back.
		IdleResume: time.Hour,
		OnInbound:  func([]byte) { readBy.Store(goid()) },
		Consume: func(v string) {
			mu.Lock()
			replies <- v
			mu.Unlock()
		},
	})
	echoPeer(t, startPipe(t, s))
	me := goid()
	leading := 0
	for i := range 50 {
		ch := make(chan string, 1)
		mu.Lock()
		replies = ch
		mu.Unlock()
		require.NoError(t, send(ctx, s, fmt.Sprint(i)))
		v, ok, err := transport.Await(ctx, s, ch)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, fmt.Sprint(i), v)
		if readBy.Load() == me {
			leading++
		}
	}
	require.GreaterOrEqual(t, leading, 48, "replies read by the caller")
	require.NoError(t, s.Disconnect(ctx))
}

// The end of a caller's context interrupts its read; the session goes on
// and the read loop takes the role back, so values keep arriving without a
// waiting caller and the end of the stream is noticed.
func TestLeaderContextEndsItsRead(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var delivered atomic.Int32
	s := newSession(cfg{OnDeliver: func(string) { delivered.Add(1) }})
	peer := startPipe(t, s)
	for range 3 {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		start := time.Now()
		_, err := s.Recv(short)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 5*time.Second)
		require.Equal(t, transport.RunstateRunning, s.State())
	}
	writeMsg(t, peer, "later")
	require.Eventually(t, func() bool { return delivered.Load() == 1 }, 10*time.Second, time.Millisecond,
		"the read loop reads when no caller waits")
	v, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "later", v)
	peer.Close()
	require.NoError(t, s.WaitState(ctx, transport.RunstateDisconnecting))
	require.ErrorIs(t, s.Disconnect(ctx), transport.ErrPeerClosed)
}

// noDeadlines is a stream whose read cannot be interrupted.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetReadDeadline(time.Time) error { return fmt.Errorf("no deadlines") }

// On a stream without read deadlines, a caller whose context can end never
// leads (its read could not be interrupted): it follows, and its context
// is honoured.
func TestNoLeaderWithoutReadDeadlines(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var readBy atomic.Uint64
	s := newSession(cfg{OnInbound: func([]byte) { readBy.Store(goid()) }})
	a, b := net.Pipe()
	require.NoError(t, s.Start(ctx, noDeadlines{a}))
	echoPeer(t, b)
	me := goid()
	for i := range 20 {
		require.NoError(t, send(ctx, s, fmt.Sprint(i)))
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), v)
		require.NotEqual(t, me, readBy.Load())
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := s.Recv(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, s.Disconnect(ctx))
}

// Many callers waiting at once: every value reaches one of them, whoever
// reads.
func TestManyWaitersShareTheReaderRole(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{})
	echoPeer(t, startPipe(t, s))
	const callers, each = 8, 200
	var wg sync.WaitGroup
	got := make(chan string, callers*each)
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				if err := send(ctx, s, fmt.Sprintf("%d/%d", c, i)); err != nil {
					t.Error(err)
					return
				}
				// One value per send; some waits give up first, and the
				// reader role passes on.
				for try := 0; ; try++ {
					wctx, cancel := ctx, context.CancelFunc(func() {})
					if i%7 == 0 && try == 0 {
						wctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*time.Millisecond)
					}
					v, err := s.Recv(wctx)
					cancel()
					if err == nil {
						got <- v
						break
					}
					if wctx == ctx {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(got)
	seen := map[string]bool{}
	for v := range got {
		require.False(t, seen[v], "%s delivered twice", v)
		seen[v] = true
	}
	require.Len(t, seen, callers*each)
	require.NoError(t, s.Disconnect(ctx))
}
