package ws

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
)

// rawUpgrade sends req (a request head without its Host line, "%s" where
// the host goes) to the server at addr and returns its response.
func rawUpgrade(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(nc, strings.ReplaceAll(req, "\n", "\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err)
	return resp
}

// The server checks the opening handshake as RFC 6455 §4.2.1 says, before
// taking the connection: a request it must refuse is refused with a clear
// message, and a valid one is not refused because of how its headers are
// spelled or split.
func TestUpgradeRequestValidation(t *testing.T) {
	transporttest.LeakCheck(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Endpoint{}.Upgrade(w, r)
		if err == nil {
			c.nc.Close()
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
	const valid = "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\n" + key
	tests := []struct {
		name   string
		req    string
		status int
		body   string
	}{
		{"valid", "GET / HTTP/1.1\nHost: h\n" + valid + "\n", 101, ""},
		{"tokens in any case", "GET / HTTP/1.1\nHost: h\nUpgrade: WebSocket\nConnection: keep-alive, UPGRADE\nSec-WebSocket-Version: 13\n" + key + "\n", 101, ""},
		// A header may be split over several lines (RFC 9110 §5.3);
		// x/net/websocket looked at the first Connection line only.
		{"Connection on two lines", "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: keep-alive\nConnection: Upgrade\nSec-WebSocket-Version: 13\n" + key + "\n", 101, ""},
		{"HTTP/1.0", "GET / HTTP/1.0\nHost: h\n" + valid + "\n", 400, "HTTP/1.1"},
		{"POST", "POST / HTTP/1.1\nHost: h\nContent-Length: 0\n" + valid + "\n", 405, "GET"},
		{"no Upgrade", "GET / HTTP/1.1\nHost: h\nConnection: Upgrade\nSec-WebSocket-Version: 13\n" + key + "\n", 400, "Upgrade"},
		{"Connection without the upgrade token", "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: noupgrade\nSec-WebSocket-Version: 13\n" + key + "\n", 400, "Connection"},
		{"no key", "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\n\n", 400, "Sec-WebSocket-Key"},
		{"key not 16 bytes", "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: eA==\n\n", 400, "Sec-WebSocket-Key"},
		{"key not base64", "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!\n\n", 400, "Sec-WebSocket-Key"},
		{"old version", "GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 8\n" + key + "\n", 426, "13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawUpgrade(t, addr, tt.req)
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status == 101 {
				require.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", resp.Header.Get("Sec-WebSocket-Accept"))
				return
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			require.Contains(t, string(body), tt.body)
			if tt.status == 426 {
				// RFC 6455 §4.4: the versions the server speaks.
				require.Equal(t, "13", resp.Header.Get("Sec-WebSocket-Version"))
			}
		})
	}
}

// A client whose request was refused cannot keep its connection to a
// Listener open by sending nothing more: a kept-alive connection waiting
// for a next request is closed after HandshakeTimeout, as one that never
// finishes its request is (it was held for ever).
func TestListenerClosesIdleConnections(t *testing.T) {
	transporttest.LeakCheck(t)
	l, _ := listen(t, Endpoint{URL: "ws://127.0.0.1:0/", HandshakeTimeout: 300 * time.Millisecond})
	for _, req := range []string{
		"GET / HTTP/1.1\nHost: h\n",   // never finished
		"GET / HTTP/1.1\nHost: h\n\n", // refused (not an upgrade), then silent
	} {
		nc, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(nc, strings.ReplaceAll(req, "\n", "\r\n"))
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, nc)
		require.NoError(t, err, "the listener kept the connection after %q", req)
		nc.Close()
	}
}
