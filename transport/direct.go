package transport

import (
	"net"

	"github.com/wirereactor/wirereactor/transport/internal/trywrite"
)

// TryWriter is implemented by a stream that can attempt a write without
// blocking. When the write loop is idle, the session then writes small
// output from the goroutine that produced it (under the session's lock),
// saving a wake-up of the write loop per message; whatever the stream does
// not take at once goes to the write loop as usual, so order, limits and
// error reporting are unchanged. The connections of packages unix and ws
// implement it; plain *net.TCPConn and *net.UnixConn streams get the same
// treatment from the session itself.
type TryWriter interface {
	// TryWrite makes one attempt to write p without blocking and returns
	// how many bytes of p the stream took: 0 when it would block and on
	// any error (the next Write reports it). A framed stream may take bytes
	// it could not send yet (the rest of a frame the kernel took only part
	// of): it keeps them, sends them before anything else in its next
	// Write, and returns pending true; the session then calls Write with
	// no bytes from its write loop so that they leave. TryWrite is never
	// called concurrently with Write.
	TryWrite(p []byte) (n int, pending bool)
}

// socketWriter is the TryWriter of a plain socket.
type socketWriter struct{ w *trywrite.Writer }

func (s socketWriter) TryWrite(p []byte) (int, bool) { return s.w.Write(p), false }

// newDirectWriter returns the stream's TryWriter: its own, or for a plain
// TCP or unix socket one the session makes; nil if there is none.
func newDirectWriter(nc net.Conn) TryWriter {
	if tw, ok := nc.(TryWriter); ok {
		return tw
	}
	if w := trywrite.New(nc); w != nil {
		return socketWriter{w}
	}
	return nil
}
