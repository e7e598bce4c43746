//go:build linux

package trywrite

import (
	"syscall"
	"unsafe"

	xunix "golang.org/x/sys/unix"
)

// Writer makes single non-blocking write attempts on one socket. It is not
// safe for concurrent use: its owner serialises calls (a transport's lock).
type Writer struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // w.attempt, made once: no closure per write
	iov [2]xunix.Iovec        // the attempt's input
	cnt int                   // iovecs used
	n   int                   // and its result
}

func newWriter(c syscall.Conn) *Writer {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	w := &Writer{rc: rc}
	w.fn = w.attempt
	return w
}

// Write makes one non-blocking attempt to write p and returns how many bytes
// the kernel took. Any failure (a full socket buffer, a closed or broken
// stream, a passed deadline) counts as zero bytes: the caller's blocking
// write then reports the error.
func (w *Writer) Write(p []byte) int { return w.Write2(p, nil) }

// Write2 is Write of a followed by b, in one writev(2) when both hold bytes.
func (w *Writer) Write2(a, b []byte) int {
	w.cnt = 0
	for _, p := range [2][]byte{a, b} {
		if len(p) > 0 {
			w.iov[w.cnt].Base = &p[0]
			w.iov[w.cnt].SetLen(len(p))
			w.cnt++
		}
	}
	if w.cnt == 0 {
		return 0
	}
	w.n = 0
	err := w.rc.Write(w.fn)
	w.iov = [2]xunix.Iovec{}
	if err != nil {
		return 0
	}
	return w.n
}

func (w *Writer) attempt(fd uintptr) bool {
	for {
		var r uintptr
		var errno syscall.Errno
		if w.cnt == 1 {
			r, _, errno = syscall.Syscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(w.iov[0].Base)), uintptr(w.iov[0].Len))
		} else {
			r, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.cnt))
		}
		if errno == syscall.EINTR {
			continue
		}
		if errno == 0 {
			w.n = int(r)
		}
		return true // never wait for the socket to become writable
	}
}
