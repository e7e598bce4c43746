package transport_test

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
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
