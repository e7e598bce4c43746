package transport

import (
	"context"
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

// Output of a Do while another Do waits for the session's lock is left for
// that one, which writes both in one attempt.
func TestDoCoalescesWithTheNextDo(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := New(Config[string, *lenmsg.Machine]{
		Logger:     slog.New(slog.DiscardHandler),
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} },
	})
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
