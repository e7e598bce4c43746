package transport_test

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
)

type poisoned = actiontest.Poisoned[string]

func poisonedSession(echo bool) *transport.Session[string, *poisoned] {
	return transport.New(transport.Config[string, *poisoned]{
		NewMachine: func() *poisoned { return actiontest.Poison[string](&lenmsg.Machine{Echo: echo}) },
	})
}

// The session is a driver that must not keep Send bytes past the machine's
// next call: with machines whose Send bytes turn to garbage at the next
// call, every message still crosses intact, small ones (written from the
// caller) and large ones (queued for the write loop) alike.
func TestSessionCopiesSendBytesInTime(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx := transporttest.Context(t)
	a, b := net.Pipe()
	srv, cli := poisonedSession(true), poisonedSession(false)
	require.NoError(t, srv.Start(ctx, a))
	require.NoError(t, cli.Start(ctx, b))
	for _, msg := range []string{"a", strings.Repeat("b", 100000), "c", "d"} {
		require.NoError(t, cli.Do(ctx, func(m *poisoned) error {
			lm := m.Unwrap().(*lenmsg.Machine)
			if err := lm.Send([]byte(msg)); err != nil {
				return err
			}
			return lm.Send([]byte(msg + "!")) // two Sends before the next read
		}))
		for _, want := range []string{msg, msg + "!"} {
			got, err := cli.Recv(ctx)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
	}
	require.NoError(t, cli.Disconnect(ctx))
	require.NoError(t, srv.WaitState(ctx, transport.RunstateDisconnecting))
	require.ErrorIs(t, srv.Disconnect(ctx), transport.ErrPeerClosed)
}
