package ws

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wirereactor/wirereactor/internal/hijacktest"
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

// FuzzUpgrade feeds arbitrary HTTP requests to the server's opening
// handshake, in memory. It must never panic; it upgrades only a valid
// WebSocket request whose Origin passes CheckOrigin, answering 101 with
// the right Sec-WebSocket-Accept and the "binary" subprotocol only when
// offered; every refusal is an HTTP error status.
func FuzzUpgrade(f *testing.F) {
	base := "GET /qmp HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	f.Add(base + "Sec-WebSocket-Protocol: binary\r\n\r\n")
	f.Add(base + "Origin: http://h:1\r\n\r\n")
	f.Add(base + "Origin: https://h:1\r\n\r\n")
	f.Add(base + "Sec-WebSocket-Protocol: text, binary\r\n\r\n\x82\x85\x01\x02\x03\x04hello")
	f.Add(base + "Sec-WebSocket-Protocol: text\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 3\r\n\r\nabc")
	f.Add(strings.Replace(base, "13", "8", 1) + "\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		w := hijacktest.NewRecorder()
		c, err := Endpoint{}.Upgrade(w, r)
		if err != nil {
			if c != nil {
				t.Fatal("a Conn with an error")
			}
			if w.Hijacked && bytes.HasPrefix(w.Out.Bytes(), []byte("HTTP/1.1 101")) {
				t.Fatalf("refused (%v) after answering 101", err)
			}
			if !w.Hijacked && w.Code < 400 {
				t.Fatalf("refused (%v) with status %d", err, w.Code)
			}
			return
		}
		defer c.nc.Close()
		if CheckOrigin(r, nil) != nil {
			t.Fatalf("upgraded a request with Origin %q for host %q", r.Header.Get("Origin"), r.Host)
		}
		resp, err := http.ReadResponse(bufio.NewReader(&w.Out), r)
		if err != nil {
			t.Fatalf("upgraded with an unreadable response: %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgraded with status %d", resp.StatusCode)
		}
		if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptFor(r.Header.Get("Sec-WebSocket-Key")); got != want {
			t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
		}
		offered := headerHasToken(r.Header, "Sec-WebSocket-Protocol", Subprotocol)
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); (got == Subprotocol) != offered || (got != "" && got != Subprotocol) {
			t.Fatalf("subprotocol %q answered to an offer of %q", got, r.Header.Values("Sec-WebSocket-Protocol"))
		}
		if c.Subprotocol() != resp.Header.Get("Sec-WebSocket-Protocol") {
			t.Fatalf("Conn says subprotocol %q, the response %q", c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Protocol"))
		}
	})
}
