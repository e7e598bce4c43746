// Package trywrite makes single non-blocking write attempts on plain
// sockets, so that a transport can send output from the goroutine that
// produced it without waiting for the socket (and without waking a writer
// goroutine) when the kernel has room.
package trywrite

import "net"

// New returns a Writer for the plain TCP and unix socket types, or nil
// (always nil where non-blocking attempts are not implemented). Exact types
// only: a wrapper that embeds one of them may do more in its Write than
// write(2), and must not be bypassed.
func New(nc net.Conn) *Writer {
	switch c := nc.(type) {
	case *net.TCPConn:
		return newWriter(c)
	case *net.UnixConn:
		return newWriter(c)
	}
	return nil
}
