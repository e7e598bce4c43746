package transport

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// recordingConn is a stream whose TryWrite takes everything and records
// each attempt; reads block until Close.
type recordingConn struct {
	net.Conn // a pipe end, for reads, deadlines and Close
	mu       sync.Mutex
	attempts [][]byte
}

func (c *recordingConn) TryWrite(p []byte) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts = append(c.attempts, append([]byte(nil), p...))
	return len(p), false
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts = append(c.attempts, append([]byte(nil), p...))
	return len(p), nil
}

// newLenmsgSession returns a quiet session of lenmsg machines, whose read
// loop takes the reader role back idleResume after a caller left it (0:
// the default).
func newLenmsgSession(idleResume time.Duration) *Session[string, *lenmsg.Machine] {
	return New(Config[string, *lenmsg.Machine]{
		Logger:     slog.New(slog.DiscardHandler),
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} },
		IdleResume: idleResume,
	})
}

// Output of a Do while another Do waits for the session's lock is left for
// that one, which writes both in one attempt.
func TestDoCoalescesWithTheNextDo(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(0)
	a, b := net.Pipe()
	defer b.Close()
	rc := &recordingConn{Conn: a}
	require.NoError(t, s.Start(ctx, rc))
	send := func(msg string) {
		require.NoError(t, s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(msg)) }))
	}

	s.doers.Add(1) // as if a Do were waiting for the lock
	send("one")
	rc.mu.Lock()
	require.Empty(t, rc.attempts, "left for the waiting Do")
	rc.mu.Unlock()
	s.doers.Add(-1)
	send("two")
	rc.mu.Lock()
	require.Equal(t, [][]byte{append(lenmsg.Append(nil, []byte("one")), lenmsg.Append(nil, []byte("two"))...)}, rc.attempts)
	rc.mu.Unlock()
	require.NoError(t, s.Disconnect(ctx))
}

// blockingConn is a recordingConn whose first TryWrite waits until release
// is closed, as a write(2) that takes long.
type blockingConn struct {
	recordingConn
	entered chan struct{} // closed when the first TryWrite starts
	release chan struct{}
	once    sync.Once
}

func (c *blockingConn) TryWrite(p []byte) (int, bool) {
	first := false
	c.once.Do(func() { first = true })
	if first {
		close(c.entered)
		<-c.release
	}
	return c.recordingConn.TryWrite(p)
}

// A caller writing directly does not hold the session's lock during the
// write: another Do runs meanwhile, and its output follows in the writing
// caller's next attempt (one syscall for everything queued meanwhile).
func TestDirectWriteReleasesTheLock(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(0)
	a, b := net.Pipe()
	defer b.Close()
	bc := &blockingConn{recordingConn: recordingConn{Conn: a}, entered: make(chan struct{}), release: make(chan struct{})}
	require.NoError(t, s.Start(ctx, bc))
	send := func(msg string) error {
		return s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(msg)) })
	}
	first := make(chan error, 1)
	go func() { first <- send("one") }()
	<-bc.entered
	// Before, this Do waited for the lock the first one held in TryWrite.
	done := make(chan error, 1)
	go func() { done <- errors.Join(send("two"), send("three")) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		close(bc.release)
		t.Fatal("a Do waited for another caller's write")
	}
	close(bc.release)
	require.NoError(t, <-first)
	bc.mu.Lock()
	require.Equal(t, [][]byte{
		lenmsg.Append(nil, []byte("one")),
		append(lenmsg.Append(nil, []byte("two")), lenmsg.Append(nil, []byte("three"))...),
	}, bc.attempts)
	bc.mu.Unlock()
	require.NoError(t, s.Disconnect(ctx))
}

// While a Cork is in, small output is left queued; the last Uncork writes
// everything left, in one attempt, and output after it goes out at once.
func TestCorkHoldsOutputUntilTheLastUncork(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(0)
	a, b := net.Pipe()
	defer b.Close()
	rc := &recordingConn{Conn: a}
	require.NoError(t, s.Start(ctx, rc))
	send := func(msg string) {
		require.NoError(t, s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(msg)) }))
	}
	attempts := func() [][]byte {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return append([][]byte(nil), rc.attempts...)
	}
	msg := func(p string) []byte { return lenmsg.Append(nil, []byte(p)) }

	s.Cork()
	s.Cork()
	send("one")
	send("two")
	require.Empty(t, attempts(), "held by the corks")
	s.Uncork()
	require.Empty(t, attempts(), "one cork is still in")
	s.Uncork()
	require.Equal(t, [][]byte{append(msg("one"), msg("two")...)}, attempts())
	send("three")
	require.Equal(t, [][]byte{append(msg("one"), msg("two")...), msg("three")}, attempts())

	// An Uncork with nothing left writes nothing.
	s.Cork()
	s.Uncork()
	require.Len(t, attempts(), 2)
	require.NoError(t, s.Disconnect(ctx))
}

// A Do that comes while a Cork is in leaves its output too; it goes out
// with the last Uncork, even though the Do itself has returned.
func TestUncorkAfterTheDoWrites(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(0)
	a, b := net.Pipe()
	defer b.Close()
	rc := &recordingConn{Conn: a}
	require.NoError(t, s.Start(ctx, rc))
	s.Cork()
	done := make(chan error, 1)
	go func() { done <- s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte("late")) }) }()
	require.NoError(t, <-done)
	rc.mu.Lock()
	require.Empty(t, rc.attempts)
	rc.mu.Unlock()
	s.Uncork()
	rc.mu.Lock()
	require.Equal(t, [][]byte{lenmsg.Append(nil, []byte("late"))}, rc.attempts)
	rc.mu.Unlock()
	require.NoError(t, s.Disconnect(ctx))
}

func TestUncorkWithoutCorkPanics(t *testing.T) {
	s := newLenmsgSession(0)
	require.PanicsWithValue(t, "transport: Uncork without Cork", s.Uncork)
}

// Disconnect writes what a Cork holds: flushing does not wait for Uncork.
func TestDisconnectWritesCorkedOutput(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(0)
	a, b := net.Pipe()
	defer b.Close()
	rc := &recordingConn{Conn: a}
	require.NoError(t, s.Start(ctx, rc))
	s.Cork()
	require.NoError(t, s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte("held")) }))
	require.NoError(t, s.Disconnect(ctx))
	rc.mu.Lock()
	require.Equal(t, [][]byte{lenmsg.Append(nil, []byte("held"))}, rc.attempts)
	rc.mu.Unlock()
	s.Uncork() // after the connection: nothing to write
}
