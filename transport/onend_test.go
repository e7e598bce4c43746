package transport_test

import (
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport"
)

// TestOnEndReportsTheEndOnce checks that Config.OnEnd is called exactly
// once per connection, with the root cause, before Disconnect returns.
func TestOnEndReportsTheEndOnce(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, s *sess, peer net.Conn)
		want error
	}{
		{"clean disconnect", func(t *testing.T, s *sess, peer net.Conn) {
			require.NoError(t, s.Disconnect(testCtx(t)))
		}, transport.ErrClosed},
		{"peer closes", func(t *testing.T, s *sess, peer net.Conn) {
			peer.Close()
			require.NoError(t, s.WaitState(testCtx(t), transport.RunstateDisconnecting))
			require.ErrorIs(t, s.Disconnect(testCtx(t)), transport.ErrPeerClosed)
		}, transport.ErrPeerClosed},
		{"machine error", func(t *testing.T, s *sess, peer net.Conn) {
			_, err := peer.Write([]byte{0xff, 0xff, 0xff, 0xff})
			require.NoError(t, err)
			require.NoError(t, s.WaitState(testCtx(t), transport.RunstateDisconnecting))
			var tooLong *action.LimitError
			require.ErrorAs(t, s.Disconnect(testCtx(t)), &tooLong)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			var (
				mu   sync.Mutex
				errs []error
			)
			s := newSession(cfg{OnEnd: func(err error) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}})
			peer := startPipe(t, s)
			mu.Lock()
			require.Empty(t, errs, "OnEnd before the end")
			mu.Unlock()
			tt.end(t, s, peer)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, errs, 1)
			if tt.want != nil {
				require.ErrorIs(t, errs[0], tt.want)
			} else {
				var tooLong *action.LimitError
				require.ErrorAs(t, errs[0], &tooLong)
			}
		})
	}
}
