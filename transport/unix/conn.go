//go:build unix

package unix

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/wirereactor/wirereactor/transport/internal/trywrite"
)

// maxFDsPerRead bounds the control buffer of one read: descriptors beyond it
// in one message are closed by the kernel (the read reports MSG_CTRUNC).
const maxFDsPerRead = 32

// FDConn is a connection that passes file descriptors: a *Conn, or a
// wrapper of one that keeps the ability (transcript.RecordConn). Code that
// passes or takes descriptors asks for an FDConn, not a *Conn.
type FDConn interface {
	net.Conn
	// WriteFDs writes p with files passed along with its first bytes.
	WriteFDs(p []byte, files ...*os.File) (int, error)
	// TakeFDs returns the descriptors received so far and forgets them.
	TakeFDs() []*os.File
}

// Conn is a Unix-domain stream connection that can pass file descriptors.
// It implements net.Conn. Once descriptors are expected (a connection from
// Accept or NewConn, from Dial with Endpoint.DialFDs, or after ExpectFDs),
// reads use recvmsg(2) and collect descriptors sent along with the bytes;
// take them with TakeFDs. Before, reads are plain read(2) calls and the
// kernel closes passed descriptors. Descriptors not taken are closed by
// Close; at most MaxFDs are held, extra ones are closed on arrival and
// counted by DroppedFDs.
type Conn struct {
	uc     *net.UnixConn
	maxFDs int

	fdsExpected atomic.Bool // reads use recvmsg and keep descriptors

	rmu sync.Mutex // serializes reads, which share oob and rs
	oob []byte     // made when descriptors are first expected
	rs  recvState

	tw *trywrite.Writer // non-blocking write attempts; nil where unsupported

	fmu     sync.Mutex
	fds     []*os.File
	dropped int
	closed  bool
}

func newConn(uc *net.UnixConn, maxFDs int, expectFDs bool) *Conn {
	c := &Conn{uc: uc, maxFDs: maxFDs}
	c.rs.init(uc)
	c.tw = trywrite.New(uc)
	if expectFDs {
		c.ExpectFDs()
	}
	return c
}

// NewConn wraps an existing Unix-domain connection, which expects
// descriptors; maxFDs ≤ 0 means DefaultMaxFDs.
func NewConn(uc *net.UnixConn, maxFDs int) *Conn {
	if maxFDs <= 0 {
		maxFDs = DefaultMaxFDs
	}
	return newConn(uc, maxFDs, true)
}

// ExpectFDs makes later reads collect passed descriptors (with recvmsg(2)
// instead of read(2)). A descriptor that arrived with bytes read before the
// call was closed by the kernel.
func (c *Conn) ExpectFDs() {
	if c.fdsExpected.Load() {
		return
	}
	c.rmu.Lock()
	if c.oob == nil {
		c.oob = make([]byte, syscall.CmsgSpace(maxFDsPerRead*4))
	}
	c.fdsExpected.Store(true)
	c.rmu.Unlock()
}

// Read reads bytes, keeping any descriptors that arrive with them once
// descriptors are expected.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.fdsExpected.Load() {
		// net's Read is a plain read(2); it returns io.EOF unwrapped and
		// other errors as *net.OpError with Op "read", as below.
		return c.uc.Read(p)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		n, oobn, flags, err := c.readMsg(p)
		if oobn > 0 {
			c.keepRights(c.oob[:oobn])
		}
		if flags&syscall.MSG_CTRUNC != 0 {
			c.fmu.Lock()
			c.dropped++ // at least one; the kernel closed them
			c.fmu.Unlock()
		}
		if n < 0 {
			n = 0
		}
		if errors.Is(err, io.EOF) {
			// ReadMsgUnix wraps EOF in a *net.OpError; Read must not.
			return n, io.EOF
		}
		if n == 0 && err == nil {
			if oobn > 0 {
				continue
			}
			return 0, io.EOF
		}
		return n, err
	}
}

func (c *Conn) keepRights(oob []byte) {
	// The kernel writes well-formed control messages; should a malformed
	// one ever come, the descriptors before it are still kept (or closed),
	// and those after it cannot be found.
	fds, _ := parseRights(oob)
	c.fmu.Lock()
	defer c.fmu.Unlock()
	for _, fd := range fds {
		if c.closed || len(c.fds) >= c.maxFDs {
			syscall.Close(fd)
			c.dropped++
			continue
		}
		c.fds = append(c.fds, os.NewFile(uintptr(fd), "scm-rights"))
	}
}

// errControl reports a malformed control message.
var errControl = errors.New("unix: malformed socket control message")

// parseRights returns the descriptors of the SCM_RIGHTS messages in the
// control buffer oob, in order, skipping messages of other types. On a
// malformed message it returns those of the messages before it, and
// errControl. Unlike syscall.ParseSocketControlMessage and ParseUnixRights
// it never reads past oob and never panics, whatever the bytes (a data
// length that is not a multiple of 4 makes ParseUnixRights index out of
// range).
func parseRights(oob []byte) ([]int, error) {
	var fds []int
	hdrSpace := syscall.CmsgSpace(0) // the header, aligned
	for len(oob) > 0 {
		var h syscall.Cmsghdr
		if len(oob) < syscall.SizeofCmsghdr {
			return fds, errControl
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), syscall.SizeofCmsghdr), oob)
		n := uint64(h.Len)
		if n < uint64(hdrSpace) || n > uint64(len(oob)) {
			return fds, errControl
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_RIGHTS {
			data := oob[hdrSpace:n]
			for ; len(data) >= 4; data = data[4:] {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data))))
			}
		}
		// The next message starts at the aligned end of this one.
		next := uint64(syscall.CmsgSpace(int(n) - hdrSpace))
		if next >= uint64(len(oob)) {
			break
		}
		oob = oob[next:]
	}
	return fds, nil
}

// TakeFDs returns the descriptors received so far, in arrival order, and
// forgets them: the caller owns (and closes) the files.
func (c *Conn) TakeFDs() []*os.File {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	fds := c.fds
	c.fds = nil
	return fds
}

// DroppedFDs returns how many received descriptors were closed because the
// limit was reached or the connection was closed.
func (c *Conn) DroppedFDs() int {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	return c.dropped
}

// ErrNoData is returned by WriteFDs when asked to pass descriptors without a
// byte to carry them (stream sockets need at least one).
var ErrNoData = errors.New("unix: passing descriptors needs at least one byte of data")

// WriteFDs writes p and passes files along with its first bytes. A short
// sendmsg is completed with plain writes, so it returns len(p) or an error.
// The files stay owned by the caller (the peer receives duplicates).
func (c *Conn) WriteFDs(p []byte, files ...*os.File) (int, error) {
	if len(files) == 0 {
		return c.Write(p)
	}
	if len(p) == 0 {
		return 0, ErrNoData
	}
	fds := make([]int, len(files))
	for i, f := range files {
		// Control, unlike Fd, leaves the file in non-blocking mode.
		rc, err := f.SyscallConn()
		if err != nil {
			return 0, err
		}
		if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
			return 0, err
		}
	}
	n, _, err := c.uc.WriteMsgUnix(p, syscall.UnixRights(fds...), nil)
	runtime.KeepAlive(files)
	if err != nil || n == len(p) {
		return n, err
	}
	m, err := c.uc.Write(p[n:])
	return n + m, err
}

// PassFDs returns a function for transport.Session.Exec that writes data
// with files attached, on a session whose stream is an FDConn. QMP's getfd
// takes the descriptor passed before it; a single space is a harmless
// carrier between QMP messages.
func PassFDs(data []byte, files ...*os.File) func(net.Conn) error {
	return func(nc net.Conn) error {
		c, ok := nc.(FDConn)
		if !ok {
			return errors.New("unix: passing descriptors needs a *unix.Conn stream")
		}
		_, err := c.WriteFDs(data, files...)
		return err
	}
}

// Write implements net.Conn.
func (c *Conn) Write(p []byte) (int, error) { return c.uc.Write(p) }

// TryWrite implements transport.TryWriter: one non-blocking write(2) of p
// (on Linux; elsewhere it takes nothing). It returns how many bytes the
// kernel took, 0 on any error.
func (c *Conn) TryWrite(p []byte) (n int, pending bool) {
	if c.tw == nil {
		return 0, false
	}
	return c.tw.Write(p), false
}

// Close closes the connection and any received descriptors not taken.
func (c *Conn) Close() error {
	c.fmu.Lock()
	c.closed = true
	fds := c.fds
	c.fds = nil
	c.fmu.Unlock()
	for _, f := range fds {
		f.Close()
	}
	return c.uc.Close()
}

// CloseWrite shuts down the writing side.
func (c *Conn) CloseWrite() error { return c.uc.CloseWrite() }

// UnixConn returns the underlying connection.
func (c *Conn) UnixConn() *net.UnixConn { return c.uc }

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.uc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.uc.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }
