//go:build linux

package unix

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	xunix "golang.org/x/sys/unix"
)

// recvState reads with recvmsg(2) through the socket's RawConn into
// reused headers: net.UnixConn.ReadMsgUnix allocates the sender's address
// on every call (three allocations per read), which a stream socket never
// needs. Guarded by Conn.rmu.
type recvState struct {
	rc  syscall.RawConn // nil: fall back to ReadMsgUnix
	fn  func(fd uintptr) bool
	msg xunix.Msghdr
	iov xunix.Iovec

	n, oobn, flags int
	errno          syscall.Errno
}

func (r *recvState) init(uc *net.UnixConn) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	r.rc = rc
	r.fn = r.attempt
}

// attempt is the RawConn.Read callback: one recvmsg, retried on EINTR;
// false asks the poller to wait for the socket to become readable.
func (r *recvState) attempt(fd uintptr) bool {
	for {
		n, _, errno := xunix.Syscall(xunix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), xunix.MSG_CMSG_CLOEXEC)
		switch errno {
		case 0:
			r.n, r.oobn, r.flags, r.errno = int(n), int(r.msg.Controllen), int(r.msg.Flags), 0
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.n, r.oobn, r.flags, r.errno = 0, 0, 0, errno
			return true
		}
	}
}

// readMsg reads into p and c.oob; errors are *net.OpError like
// ReadMsgUnix's, and end of stream is n == 0 with a nil error.
func (c *Conn) readMsg(p []byte) (n, oobn, flags int, err error) {
	r := &c.rs
	if r.rc == nil {
		n, oobn, flags, _, err = c.uc.ReadMsgUnix(p, c.oob)
		return n, oobn, flags, err
	}
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg = xunix.Msghdr{Iov: &r.iov, Control: &c.oob[0]}
	r.msg.SetIovlen(1)
	r.msg.SetControllen(len(c.oob))
	err = r.rc.Read(r.fn)
	r.iov.Base, r.msg.Iov, r.msg.Control = nil, nil, nil
	if err != nil {
		if oe, ok := err.(*net.OpError); ok {
			oe.Op = "read" // not "raw-read": the caller asked for a read
		}
		return 0, 0, 0, err
	}
	if r.errno != 0 {
		return 0, 0, 0, &net.OpError{Op: "read", Net: "unix", Source: c.uc.LocalAddr(), Addr: c.uc.RemoteAddr(), Err: os.NewSyscallError("recvmsg", r.errno)}
	}
	return r.n, r.oobn, r.flags, nil
}
