package transport_test

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// waitForGoroutineIn waits until some goroutine's stack shows fn.
func waitForGoroutineIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	require.Eventually(t, func() bool {
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
	}, 10*time.Second, time.Millisecond, "no goroutine in %s", fn)
}

// fillDeliveryQueue makes the read loop block waiting for room: the peer
// sends more messages than DeliverQueue and nobody calls Recv.
func fillDeliveryQueue(t *testing.T, s *sess) net.Conn {
	t.Helper()
	peer := startPipe(t, s)
	var msgs []byte
	for range 4 {
		msgs = lenmsg.Append(msgs, []byte("m"))
	}
	go peer.Write(msgs) // net.Pipe: returns once read, or fails on close
	waitForGoroutineIn(t, ".waitRoom(")
	return peer
}

// The read loop's wait for room ends with the link: a stopped link's read
// loop exits even though nobody made room (no Recv), so Disconnect returns.
func TestStoppedLinkEndsReadLoopWaitingForRoom(t *testing.T) {
	t.Run("disconnect", func(t *testing.T) {
		leakCheck(t)
		s := newSession(cfg{DeliverQueue: 1})
		fillDeliveryQueue(t, s)
		require.NoError(t, s.Disconnect(testCtx(t)))
		require.Equal(t, transport.RunstateIdle, s.State())
	})
	t.Run("write error", func(t *testing.T) {
		leakCheck(t)
		s := newSession(cfg{DeliverQueue: 1})
		peer := fillDeliveryQueue(t, s)
		peer.Close()
		// The write fails on the closed pipe and stops the link.
		require.NoError(t, send(testCtx(t), s, "x"))
		require.NoError(t, s.WaitState(testCtx(t), transport.RunstateDisconnecting))
		require.Error(t, s.Disconnect(testCtx(t)))
	})
}
