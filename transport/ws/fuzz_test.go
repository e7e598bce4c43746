package ws

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// scriptConn is a net.Conn that reads a fixed script and discards writes.
type scriptConn struct {
	r *bytes.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzConnRead feeds arbitrary bytes to a Conn's frame reader, as a client
// (unmasked frames expected) or a server (masked): it must never panic,
// never return (0, nil), never return more payload than it was given, and
// must end with an error.
func FuzzConnRead(f *testing.F) {
	masked := func(b0 byte, p string) []byte {
		out := []byte{b0, 0x80 | byte(len(p)), 1, 2, 3, 4}
		q := []byte(p)
		maskBytes([4]byte{1, 2, 3, 4}, 0, q)
		return append(out, q...)
	}
	f.Add(append([]byte{0x82, 5}, "hello"...), true)
	f.Add(masked(0x82, "hello"), false)
	f.Add(append(masked(0x02, "hel"), masked(0x80, "lo")...), false)
	f.Add(append(masked(0x89, "ping"), masked(0x82, "data")...), false)
	f.Add(masked(0x88, "\x03\xe8bye"), false)
	f.Add(masked(0x81, "text"), false)
	f.Add([]byte{0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true)
	f.Add([]byte{0x82, 126, 0x00}, true)
	f.Fuzz(func(t *testing.T, data []byte, client bool) {
		c := newConn(&scriptConn{r: bytes.NewReader(data)}, client, nil, connOptions{maxFrame: 4096, closeTimeout: time.Millisecond})
		buf := make([]byte, 64)
		total := 0
		for {
			n, err := c.Read(buf)
			total += n
			if total > len(data) {
				t.Fatalf("read %d payload bytes from %d input bytes", total, len(data))
			}
			if err != nil {
				if err == io.EOF && total > 0 && len(data) == 0 {
					t.Fatal("EOF after data from nothing")
				}
				return
			}
			if n == 0 {
				t.Fatal("Read returned 0, nil")
			}
		}
	})
}
