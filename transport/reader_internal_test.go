package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// A leading caller's context ends its blocked read through a read deadline
// in the past, which is cleared afterwards: the next read works.
func TestLeaderKickedByItsContextThenReadsAgain(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(time.Hour) // the read loop never takes the role back
	a, b := net.Pipe()
	defer b.Close()
	require.NoError(t, s.Start(ctx, a))
	write := func(msg string) {
		_, err := b.Write(lenmsg.Append(nil, []byte(msg)))
		require.NoError(t, err)
	}
	role := func() readerRole {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.c.reader
	}

	// Until a caller waits before the data arrives, the loop reads; then
	// it hands the role to that caller, which leaves it free.
	for i := 0; role() != roleFree; i++ {
		require.Less(t, i, 100)
		go func() {
			time.Sleep(10 * time.Millisecond)
			write("first")
		}()
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "first", v)
	}
	var v string
	var err error

	for range 3 {
		short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err = s.Recv(short)
		cancelShort()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, roleFree, role())
	}
	go write("second")
	v, err = s.Recv(ctx)
	require.NoError(t, err, "the read deadline was cleared")
	require.Equal(t, "second", v)
	require.NoError(t, s.Disconnect(ctx))
}

// A caller that held the reader role longer than IdleResume hands it back
// to the read loop at once; after a quick exchange it stays free for the
// next wait.
func TestSlowExchangeHandsTheRoleBack(t *testing.T) {
	defer goleak.VerifyNone(t)
	const idleResume = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := newLenmsgSession(idleResume)
	a, b := net.Pipe()
	defer b.Close()
	require.NoError(t, s.Start(ctx, a))
	writeAfter := func(d time.Duration, msg string) {
		time.Sleep(d)
		_, _ = b.Write(lenmsg.Append(nil, []byte(msg)))
	}
	role := func() readerRole {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.c.reader
	}
	recv := func(want string) {
		t.Helper()
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, want, v)
	}

	// Until a caller waits before the data arrives, the loop reads; then
	// it hands the role to that caller, which leaves it free.
	for i := 0; role() != roleFree; i++ {
		require.Less(t, i, 100)
		go writeAfter(idleResume/5, "warm-up")
		recv("warm-up")
	}
	go writeAfter(0, "quick")
	recv("quick")
	require.Equal(t, roleFree, role(), "free after a quick exchange")

	go writeAfter(3*idleResume, "slow")
	recv("slow")
	require.Equal(t, roleLoop, role(), "handed back to the read loop at once")
	require.NoError(t, s.Disconnect(ctx))
}
