package main

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/wirereactor/wirereactor/internal/hijacktest"
	"github.com/wirereactor/wirereactor/transport"
)

// FuzzBridgeHTTP feeds arbitrary HTTP requests to the bridge's handler,
// in memory, with a token configured and a backend whose dialer only
// counts. It must never panic; a request without the right token gets 401
// on every protected path (no backend name, busy state or origin verdict
// revealed); the backend is dialed only after a 101 (or by the probe of
// an authorized /backends); every reservation of
// a backend is released when the handler returns.
func FuzzBridgeHTTP(f *testing.F) {
	up := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
	f.Add("GET /vm/vm1?access_token=tok HTTP/1.1\r\nHost: h:1\r\n" + up + "\r\n")
	f.Add("GET /vm/vm1 HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer tok\r\nOrigin: https://h:1\r\n" + up + "\r\n")
	f.Add("GET /vm/nope HTTP/1.1\r\nHost: h:1\r\n" + up + "\r\n")
	f.Add("GET /vm/vm1?access_token=tok HTTP/1.1\r\nHost: h:1\r\n\r\n")
	f.Add("GET /backends?access_token=tok HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("GET /vm/vm1?access_token=tok&access_token=x HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer x\r\n" + up + "\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		b, err := NewBridge(Config{Backends: map[string]string{"vm1": "unix:/nonexistent"}, Token: "tok", Console: true,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		dials := 0
		b.dialers["vm1"] = transport.DialFunc(func(context.Context) (net.Conn, error) {
			dials++
			return nil, errors.New("no backend in a fuzz test")
		})
		w := hijacktest.NewRecorder()
		b.ServeHTTP(w, r)

		status := w.Code
		if w.Hijacked {
			resp, err := http.ReadResponse(bufio.NewReader(&w.Out), r)
			if err != nil {
				t.Fatalf("unreadable response after a hijack: %v", err)
			}
			status = resp.StatusCode
		}
		protected := strings.HasPrefix(r.URL.Path, "/vm/") || r.URL.Path == "/backends"
		if protected && !b.authorized(r) && status != http.StatusUnauthorized {
			t.Fatalf("%s without the token answered %d, want 401", r.URL.Path, status)
		}
		if dials > 0 && r.URL.Path != "/backends" && status != http.StatusSwitchingProtocols {
			t.Fatalf("the backend was dialed for a request answered %d", status)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.busy) != 0 {
			t.Fatalf("backends still reserved after the request: %v", b.busy)
		}
	})
}
