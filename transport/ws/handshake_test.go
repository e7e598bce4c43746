package ws

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
)

// A refused upgrade reaches the caller as a *HandshakeError with the
// status and the server's message (x/net/websocket's client said only
// "bad status").
func TestDialRefusedIsHandshakeError(t *testing.T) {
	transporttest.LeakCheck(t)
	for _, tt := range []struct {
		code int
		msg  string
	}{
		{http.StatusUnauthorized, "missing or wrong bearer token"},
		{http.StatusForbidden, "origin not allowed"},
		{http.StatusBadGateway, "backend vm1 unreachable: connection refused"},
		{http.StatusNotFound, ""},
	} {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.msg == "" {
					w.WriteHeader(tt.code)
					return
				}
				http.Error(w, tt.msg, tt.code)
			}))
			defer srv.Close()
			_, err := Endpoint{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/vm/vm1"}.Dial(transporttest.Context(t))
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			require.Equal(t, tt.code, he.StatusCode)
			require.Equal(t, fmt.Sprintf("%d %s", tt.code, http.StatusText(tt.code)), he.Status)
			require.Equal(t, tt.msg, strings.TrimSpace(he.Body))
			want := "ws: handshake refused: " + he.Status
			if tt.msg != "" {
				want += ": " + tt.msg
			}
			require.EqualError(t, err, want)
		})
	}
}

// A body that never ends, from a server that keeps the connection open,
// is cut at 4 KiB.
func TestDialRefusedBodyBounded(t *testing.T) {
	transporttest.LeakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\n\r\n"))
		chunk := []byte(strings.Repeat("x", 1024))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	_, err = Endpoint{URL: "ws://" + ln.Addr().String() + "/"}.Dial(transporttest.Context(t))
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 503, he.StatusCode)
	require.Len(t, he.Body, maxErrorBody)
	ln.Close()
	<-done
}

// 101 responses that break RFC 6455 are refused, each with its reason.
func TestDialBadSwitchingProtocols(t *testing.T) {
	tests := []struct {
		name, head, want string
	}{
		{"wrong accept", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n", "wrong Sec-WebSocket-Accept"},
		{"no upgrade", "Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n", `Upgrade "", want websocket`},
		{"no connection", "Upgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n", `Connection "", want Upgrade`},
		{"other subprotocol", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: text\r\n", `subprotocol "text"`},
		{"extension", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n", "extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nc, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer nc.Close()
				head := strings.ReplaceAll(tt.head, "{accept}", acceptFor(r.Header.Get("Sec-WebSocket-Key")))
				_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\n"+head+"\r\n")
			}))
			defer srv.Close()
			_, err := Endpoint{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/"}.Dial(transporttest.Context(t))
			var he *HandshakeError
			require.ErrorAs(t, err, &he)
			require.Equal(t, 101, he.StatusCode)
			require.Contains(t, he.Reason, tt.want)
		})
	}
}

// A response head larger than the limit is an error, not a growing
// buffer.
func TestDialResponseHeadBounded(t *testing.T) {
	transporttest.LeakCheck(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nX-Big: "+strings.Repeat("a", 2*maxResponseHead)+"\r\n\r\n")
	}))
	defer srv.Close()
	_, err := Endpoint{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/"}.Dial(transporttest.Context(t))
	require.ErrorContains(t, err, "ws: handshake: response head bytes: 16385 exceeds the limit of 16384")
	require.ErrorIs(t, err, action.ErrLimit)
}

// Header values that would split the request are refused before sending.
func TestDialRejectsHeaderInjection(t *testing.T) {
	for _, h := range []http.Header{{"X-A": {"v\r\nX-Evil: 1"}}, {"Bad Name": {"v"}}} {
		_, _, err := clientHandshake(discardConn{}, mustURL(t, "ws://h/"), "", h)
		require.Error(t, err)
	}
}

type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }
func (discardConn) Read([]byte) (int, error)    { return 0, io.EOF }

func TestCheckOrigin(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		tls     bool
		origin  string
		allowed []string
		ok      bool
	}{
		{"no origin", "h:1", false, "", nil, true},
		{"same origin", "h:1", false, "http://h:1", nil, true},
		{"same origin, case", "H:1", false, "HTTP://h:1", nil, true},
		{"same origin over TLS", "h:1", true, "https://h:1", nil, true},
		// The scheme counts: an http bridge refuses a page served over
		// https from the same host (accepted before), and the other way.
		{"https page, http server", "h:1", false, "https://h:1", nil, false},
		{"http page, https server", "h:1", true, "http://h:1", nil, false},
		{"other port", "h:1", false, "http://h:2", nil, false},
		{"other host", "h:1", false, "http://evil:1", nil, false},
		{"unparsable", "h:1", false, "::", nil, false},
		// A sandboxed or file: page sends "null": never same-origin.
		{"null", "h:1", false, "null", nil, false},
		{"IPv6", "[::1]:4700", false, "http://[::1]:4700", nil, true},
		{"IPv6, other port", "[::1]:4700", false, "http://[::1]:4701", nil, false},
		{"default port not spelled the same", "h", false, "http://h:80", nil, false},
		{"listed", "h:1", false, "https://console.example", []string{"https://console.example"}, true},
		{"not listed", "h:1", false, "http://h:1", []string{"https://console.example"}, false},
		{"any", "h:1", false, "http://evil", []string{"*"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Host: tt.host, Header: http.Header{}}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			err := CheckOrigin(r, tt.allowed)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrOriginRejected)
			}
		})
	}
}

// CloseWithStatus sends its code and reason to the peer.
func TestCloseWithStatus(t *testing.T) {
	transporttest.LeakCheck(t)
	c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		read <- err
	}()
	require.NoError(t, s.CloseWithStatus(CloseBadGateway, "backend vm1 unreachable"))
	var ce *CloseError
	require.ErrorAs(t, <-read, &ce)
	require.Equal(t, &CloseError{Code: CloseBadGateway, Reason: "backend vm1 unreachable"}, ce)
	require.NoError(t, c.Close())
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// A close frame with a status no peer may send, or a reason that is not
// UTF-8, is a protocol error (Autobahn's 7.7–7.9 cases); a valid one is
// echoed with its status.
func TestCloseFrameValidation(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		code    uint16
	}{
		{"1005 on the wire", []byte{0x03, 0xed}, CloseProtocolError},
		{"999", []byte{0x03, 0xe7}, CloseProtocolError},
		{"reserved 2000", []byte{0x07, 0xd0}, CloseProtocolError},
		{"5000", []byte{0x13, 0x88}, CloseProtocolError},
		{"reason not UTF-8", []byte{0x03, 0xe8, 0xff, 0xfe}, CloseInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
			writeRaw(t, c, 0x88, tt.payload, uint64(len(tt.payload)))
			_, err := s.Read(make([]byte, 1))
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.code, pe.Code)
			_, err = c.Read(make([]byte, 1))
			var ce *CloseError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.code, ce.Code)
		})
	}
	t.Run("echoed", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
		writeRaw(t, c, 0x88, []byte{0x0f, 0xa1, 'x'}, 3) // 4001 "x"
		_, err := s.Read(make([]byte, 1))
		require.Equal(t, &CloseError{Code: 4001, Reason: "x"}, err)
		_, err = c.Read(make([]byte, 1))
		require.Equal(t, &CloseError{Code: 4001}, err)
	})
}
