//go:build linux

package transport

import (
	"net"
	"syscall"

	xunix "golang.org/x/sys/unix"

	"github.com/wirereactor/wirereactor/transport/unix"
)

// peerGone reports, after the stream ended, whether the peer closed the
// connection entirely rather than only its sending side. Unix sockets tell
// the two apart (POLLHUP); TCP and everything else do not, and count as
// half-closed: writing to a peer that has gone fails later.
func peerGone(nc net.Conn) bool {
	var rc syscall.RawConn
	var err error
	switch c := nc.(type) {
	case *net.UnixConn:
		rc, err = c.SyscallConn()
	case *unix.Conn:
		rc, err = c.UnixConn().SyscallConn()
	default:
		return false
	}
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		fds := []xunix.PollFd{{Fd: int32(fd), Events: xunix.POLLOUT}}
		if n, err := xunix.Poll(fds, 0); err == nil && n == 1 {
			gone = fds[0].Revents&(xunix.POLLHUP|xunix.POLLERR) != 0
		}
	})
	return gone
}
