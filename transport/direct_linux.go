//go:build linux

package transport

import (
	"net"
	"syscall"

	xunix "golang.org/x/sys/unix"

	"github.com/wirereactor/wirereactor/transport/unix"
)

// directWriter makes single non-blocking write attempts on a socket whose
// Write is a plain write(2), so that output can leave without waking the
// write loop. Used under the session's lock only.
type directWriter struct {
	rc syscall.RawConn
	fn func(fd uintptr) bool // d.attempt, made once: no closure per write
	p  []byte                // the attempt's input
	n  int                   // and its result
}

// newDirectWriter returns a directWriter for the plain TCP and unix socket
// types, or nil. Exact types only: a wrapper that embeds one of them may
// do more in its Write than write(2), and must not be bypassed.
func newDirectWriter(nc net.Conn) *directWriter {
	var rc syscall.RawConn
	var err error
	switch c := nc.(type) {
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		rc, err = c.SyscallConn()
	case *unix.Conn:
		rc, err = c.UnixConn().SyscallConn()
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	d := &directWriter{rc: rc}
	d.fn = d.attempt
	return d
}

// write makes one non-blocking attempt to write p and returns how many
// bytes the kernel took. Any failure (a full socket buffer, a closed or
// broken stream, a passed deadline) counts as zero bytes: the write loop
// then writes the rest and reports the error.
func (d *directWriter) write(p []byte) int {
	d.p, d.n = p, 0
	err := d.rc.Write(d.fn)
	d.p = nil
	if err != nil {
		return 0
	}
	return d.n
}

func (d *directWriter) attempt(fd uintptr) bool {
	n, err := xunix.Write(int(fd), d.p)
	if err != nil || n < 0 {
		n = 0
	}
	d.n = n
	return true // never wait for the socket to become writable
}
