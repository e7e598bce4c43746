package transport

import (
	"context"
	"log/slog"
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
	defer func(d time.Duration) { idleResume = d }(idleResume)
	idleResume = time.Hour // the read loop never takes the role back

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := New(Config[string, *lenmsg.Machine]{
		Logger:     slog.New(slog.DiscardHandler),
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} },
	})
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

	// The read loop reads "first" and hands the role to the waiting caller,
	// which leaves it free.
	go write("first")
	v, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "first", v)
	require.Eventually(t, func() bool { return role() == roleFree }, 10*time.Second, time.Millisecond)

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
