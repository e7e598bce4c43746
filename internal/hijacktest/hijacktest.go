// Package hijacktest is an httptest.ResponseRecorder that a handler can
// hijack, for fuzzing WebSocket upgrades in memory: after Hijack, the
// handler's writes collect in Out and its reads find no input.
package hijacktest

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http/httptest"
	"time"
)

// Recorder records an HTTP response, or the raw bytes written after a
// hijack.
type Recorder struct {
	*httptest.ResponseRecorder
	Hijacked bool         // whether the handler hijacked the connection
	Out      bytes.Buffer // what the handler wrote after hijacking
}

// NewRecorder returns a Recorder with nothing hijacked yet.
func NewRecorder() *Recorder { return &Recorder{ResponseRecorder: httptest.NewRecorder()} }

// Hijack hands the handler an in-memory connection writing to r.Out.
func (r *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.Hijacked = true
	c := &conn{out: &r.Out}
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}

// conn is the hijacked connection: reads end at once, writes go to out.
type conn struct{ out *bytes.Buffer }

func (c *conn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *conn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *conn) Close() error                     { return nil }
func (c *conn) LocalAddr() net.Addr              { return nil }
func (c *conn) RemoteAddr() net.Addr             { return nil }
func (c *conn) SetDeadline(time.Time) error      { return nil }
func (c *conn) SetReadDeadline(time.Time) error  { return nil }
func (c *conn) SetWriteDeadline(time.Time) error { return nil }
