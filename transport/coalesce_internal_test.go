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

// attemptsMade returns a copy of the attempts recorded so far.
func (c *recordingConn) attemptsMade() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.attempts...)
}

// startRecording starts a lenmsg session over a recordingConn and returns
// them with a context for the test; the session is disconnected and
// goroutine leaks checked when the test ends.
func startRecording(t *testing.T) (context.Context, *Session[string, *lenmsg.Machine], *recordingConn) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s := newLenmsgSession(0)
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	rc := &recordingConn{Conn: a}
	require.NoError(t, s.Start(ctx, rc))
	t.Cleanup(func() { require.NoError(t, s.Disconnect(ctx)) })
	return ctx, s, rc
}

// sendMsg runs Do with one message.
func sendMsg(ctx context.Context, s *Session[string, *lenmsg.Machine], msg string) error {
	return s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte(msg)) })
}

func wire(msgs ...string) []byte {
	var b []byte
	for _, m := range msgs {
		b = lenmsg.Append(b, []byte(m))
	}
	return b
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
	ctx, s, rc := startRecording(t)
	s.doers.Add(1) // as if a Do were waiting for the lock
	require.NoError(t, sendMsg(ctx, s, "one"))
	require.Empty(t, rc.attemptsMade(), "left for the waiting Do")
	s.doers.Add(-1)
	require.NoError(t, sendMsg(ctx, s, "two"))
	require.Equal(t, [][]byte{wire("one", "two")}, rc.attemptsMade())
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
	ctx, s, rc := startRecording(t)
	s.Cork()
	s.Cork()
	require.NoError(t, sendMsg(ctx, s, "one"))
	require.NoError(t, sendMsg(ctx, s, "two"))
	require.Empty(t, rc.attemptsMade(), "held by the corks")
	s.Uncork()
	require.Empty(t, rc.attemptsMade(), "one cork is still in")
	s.Uncork()
	require.Equal(t, [][]byte{wire("one", "two")}, rc.attemptsMade())
	require.NoError(t, sendMsg(ctx, s, "three"))
	require.Equal(t, [][]byte{wire("one", "two"), wire("three")}, rc.attemptsMade())

	// An Uncork with nothing left writes nothing.
	s.Cork()
	s.Uncork()
	require.Len(t, rc.attemptsMade(), 2)
}

// A Do that comes while a Cork is in leaves its output too; it goes out
// with the last Uncork, even though the Do itself has returned.
func TestUncorkAfterTheDoWrites(t *testing.T) {
	ctx, s, rc := startRecording(t)
	s.Cork()
	done := make(chan error, 1)
	go func() { done <- sendMsg(ctx, s, "late") }()
	require.NoError(t, <-done)
	require.Empty(t, rc.attemptsMade())
	s.Uncork()
	require.Equal(t, [][]byte{wire("late")}, rc.attemptsMade())
}

func TestUncorkWithoutCorkPanics(t *testing.T) {
	s := newLenmsgSession(0)
	require.PanicsWithValue(t, "transport: Uncork without Cork", s.Uncork)
}

// Disconnect writes what a Cork holds: flushing does not wait for Uncork.
func TestDisconnectWritesCorkedOutput(t *testing.T) {
	ctx, s, rc := startRecording(t)
	s.Cork()
	require.NoError(t, sendMsg(ctx, s, "held"))
	require.NoError(t, s.Disconnect(ctx))
	require.Equal(t, [][]byte{wire("held")}, rc.attemptsMade())
	s.Uncork() // after the connection: nothing to write
}
