package transport_test

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// flakyListener fails its first Accept calls with err, as a listener does
// when the process is out of descriptors.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// A transient accept error (EMFILE when descriptors run out, a connection
// aborted before it was accepted) does not stop the server: it waits a
// little and accepts again, as net/http does. Before, Serve closed every
// connection and returned: a client could take a server down by opening
// connections until the process ran out of descriptors.
func TestServerSurvivesTransientAcceptErrors(t *testing.T) {
	leakCheck(t)
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED} {
		t.Run(errno.Error(), func(t *testing.T) {
			srv := newEchoServer()
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ln := &flakyListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "tcp", Addr: inner.Addr(), Err: os.NewSyscallError("accept4", errno)}}
			ln.fails.Store(3)
			serve(t, srv, ln)
			c, err := net.Dial("tcp", inner.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			require.True(t, echoes(t, c, "still serving"))
		})
	}
	// A permanent error still ends Serve.
	srv := newEchoServer()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	broken := errors.New("listener broken")
	ln := &flakyListener{Listener: inner, err: broken}
	ln.fails.Store(1)
	require.ErrorIs(t, srv.Serve(testCtx(t), ln), broken)
}

// Shutdown ends protocol handshakes (Config.Handshake) waiting on silent
// peers: it does not wait for them to speak.
func TestServerShutdownDuringProtocolHandshake(t *testing.T) {
	leakCheck(t)
	srv := newEchoServer()
	entered := make(chan struct{}, 4)
	srv.Config.Handshake = func(ctx context.Context, s *transport.Session[string, *lenmsg.Machine]) error {
		entered <- struct{}{}
		_, err := s.Recv(ctx) // the peer's hello, which never comes
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		<-entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.ErrorIs(t, <-done, transport.ErrServerClosed)
	require.Equal(t, 0, srv.Sessions())
}

// Under churn (clients connecting and leaving at once, many beyond
// MaxConns) every connection is either served or refused, the count of
// active connections returns to zero, and freed slots serve again.
func TestServerMaxConnsChurn(t *testing.T) {
	leakCheck(t)
	srv := newEchoServer()
	srv.MaxConns = 4
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(t, srv, ln)
	const clients, rounds = 16, 20
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range rounds {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				_ = echoes(t, c, "x")
				c.Close()
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return srv.Sessions() == 0 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		st := srv.Stats()
		return st.Accepted+st.Refused == clients*rounds
	}, 10*time.Second, 5*time.Millisecond, "%+v", srv.Stats())
	require.Equal(t, 0, srv.Stats().Active)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.True(t, echoes(t, c, "after the churn"))
}
