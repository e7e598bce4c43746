package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// CloseTryAgainLater is the WebSocket close status sent to a client that
// asks for a backend another client is using (RFC 6455 registry: "Try
// Again Later").
const CloseTryAgainLater = 1013

// Config configures a Bridge. Backends is required; every other zero field
// is a sane default.
type Config struct {
	// Backends maps a name (served at /vm/NAME) to a QMP socket address,
	// unix:/path or tcp:host:port.
	Backends map[string]string
	// AllowedOrigins lists the browser Origins accepted, as
	// scheme://host[:port], or "*". Empty means same-origin only. Requests
	// without an Origin header (non-browser clients) are accepted.
	AllowedOrigins []string
	// Token, if set, must be presented as "Authorization: Bearer TOKEN" or,
	// for browsers (which cannot set headers on a WebSocket), as the
	// access_token query parameter.
	Token string
	// Console serves the web console at / and the backend list at
	// /backends.
	Console bool
	// DialTimeout bounds connecting to a backend; zero means 5 seconds.
	DialTimeout time.Duration
	// Logger receives the bridge's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Bridge is an http.Handler relaying WebSocket clients to QMP sockets: the
// WebSocket carries QMP's byte stream unchanged in binary frames, in both
// directions. QEMU serves one client per monitor, so the bridge admits one
// client per backend at a time and closes a second one at once with status
// 1013 and the reason "busy: …".
type Bridge struct {
	cfg      Config
	dialers  map[string]transport.Dialer
	mu       sync.Mutex
	busy     map[string]bool
	conns    map[net.Conn]struct{} // open client and backend connections
	closed   bool
	wg       sync.WaitGroup
	upgrader ws.Endpoint
}

// NewBridge checks cfg and returns a bridge.
func NewBridge(cfg Config) (*Bridge, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("no backends: give at least one NAME=ADDRESS")
	}
	b := &Bridge{cfg: cfg, dialers: map[string]transport.Dialer{}, busy: map[string]bool{}, conns: map[net.Conn]struct{}{},
		upgrader: ws.Endpoint{AllowedOrigins: cfg.AllowedOrigins}}
	for name, addr := range cfg.Backends {
		if name == "" || strings.ContainsAny(name, "/?#") {
			return nil, fmt.Errorf("backend name %q: want a non-empty name without / ? #", name)
		}
		d, err := parseBackend(addr)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		b.dialers[name] = d
	}
	if b.cfg.DialTimeout == 0 {
		b.cfg.DialTimeout = 5 * time.Second
	}
	return b, nil
}

// parseBackend turns unix:/path or tcp:host:port into a dialer.
func parseBackend(addr string) (transport.Dialer, error) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		return unix.Endpoint{Path: strings.TrimPrefix(addr, "unix:")}, nil
	case strings.HasPrefix(addr, "tcp:"):
		return tcp.Endpoint{Address: strings.TrimPrefix(addr, "tcp:")}, nil
	}
	return nil, fmt.Errorf("address %q: want unix:/path or tcp:host:port", addr)
}

func (b *Bridge) log() *slog.Logger {
	if b.cfg.Logger != nil {
		return b.cfg.Logger
	}
	return slog.Default()
}

// Names returns the backend names, sorted.
func (b *Bridge) Names() []string {
	names := make([]string, 0, len(b.dialers))
	for n := range b.dialers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ServeHTTP serves /vm/NAME, and with Console the page and /backends.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/vm/"):
		b.serveVM(w, r, strings.TrimPrefix(r.URL.Path, "/vm/"))
	case b.cfg.Console && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:")
		_, _ = io.WriteString(w, consolePage)
	case b.cfg.Console && r.URL.Path == "/backends":
		if !b.authorized(r) {
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(b.Names())
	default:
		http.NotFound(w, r)
	}
}

// authorized checks the bearer token, if one is configured.
func (b *Bridge) authorized(r *http.Request) bool {
	if b.cfg.Token == "" {
		return true
	}
	got := r.URL.Query().Get("access_token")
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(b.cfg.Token)) == 1
}

// originAllowed applies the rules of ws.Endpoint.AllowedOrigins, so that a
// busy backend is not revealed to a page the upgrade would refuse.
func (b *Bridge) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(b.cfg.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range b.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (b *Bridge) serveVM(w http.ResponseWriter, r *http.Request, name string) {
	d, ok := b.dialers[name]
	if !ok {
		http.Error(w, fmt.Sprintf("no backend named %q", name), http.StatusNotFound)
		return
	}
	if !b.authorized(r) {
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	if !b.originAllowed(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	switch b.acquire(name) {
	case errClosing:
		http.Error(w, "the bridge is shutting down", http.StatusServiceUnavailable)
		return
	case errBusy:
		b.log().Info("refusing a second client", "backend", name, "remote", r.RemoteAddr)
		closeBusy(w, r, fmt.Sprintf("busy: backend %s already has a client", name))
		return
	}
	defer b.release(name)

	ctx, cancel := context.WithTimeout(r.Context(), b.cfg.DialTimeout)
	backend, err := d.Dial(ctx)
	cancel()
	if err != nil {
		b.log().Warn("backend unreachable", "backend", name, "err", err)
		http.Error(w, fmt.Sprintf("backend %s unreachable: %v", name, err), http.StatusBadGateway)
		return
	}
	client, err := b.upgrader.Upgrade(w, r)
	if err != nil {
		backend.Close()
		b.log().Info("upgrade refused", "backend", name, "err", err)
		return
	}
	if !b.track(client, backend) {
		client.Close()
		backend.Close()
		return
	}
	b.log().Info("client connected", "backend", name, "remote", r.RemoteAddr)
	relay(client, backend)
	b.untrack(client, backend)
	b.log().Info("client disconnected", "backend", name, "remote", r.RemoteAddr)
}

// relay copies both ways until either side ends, then closes both.
func relay(client, backend net.Conn) {
	done := make(chan struct{}, 2)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			backend.Close()
			client.Close()
		})
	}
	go func() { _, _ = io.Copy(backend, client); closeBoth(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, backend); closeBoth(); done <- struct{}{} }()
	<-done
	<-done
}

var (
	errBusy    = errors.New("backend busy")
	errClosing = errors.New("bridge closing")
)

// acquire reserves backend name for one client.
func (b *Bridge) acquire(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return errClosing
	case b.busy[name]:
		return errBusy
	}
	b.busy[name] = true
	return nil
}

func (b *Bridge) release(name string) {
	b.mu.Lock()
	delete(b.busy, name)
	b.mu.Unlock()
}

func (b *Bridge) track(cs ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	b.wg.Add(1)
	return true
}

func (b *Bridge) untrack(cs ...net.Conn) {
	b.mu.Lock()
	for _, c := range cs {
		delete(b.conns, c)
	}
	b.mu.Unlock()
	b.wg.Done()
}

// Close ends every relayed connection (clients get a close frame) and waits
// for the relays to finish. Run it after http.Server.Shutdown, which does
// not know about upgraded connections.
func (b *Bridge) Close() {
	b.mu.Lock()
	b.closed = true
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	b.wg.Wait()
}

// closeBusy completes the WebSocket handshake and at once sends a close
// frame with status 1013 and reason, so a browser sees why (an HTTP error
// before the upgrade reaches a page only as an anonymous failure).
func closeBusy(w http.ResponseWriter, r *http.Request, reason string) {
	key := r.Header.Get("Sec-WebSocket-Key")
	hj, ok := w.(http.Hijacker)
	if key == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !ok {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	var hdr strings.Builder
	hdr.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	hdr.WriteString("Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n")
	for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		if strings.TrimSpace(p) == ws.Subprotocol {
			hdr.WriteString("Sec-WebSocket-Protocol: " + ws.Subprotocol + "\r\n")
			break
		}
	}
	hdr.WriteString("\r\n")
	if len(reason) > 123 {
		reason = reason[:123] // a control frame's payload is at most 125 bytes
	}
	frame := []byte{0x88, byte(2 + len(reason)), 0, 0}
	binary.BigEndian.PutUint16(frame[2:], CloseTryAgainLater)
	frame = append(frame, reason...)
	if _, err := rw.WriteString(hdr.String()); err != nil {
		return
	}
	if _, err := rw.Write(frame); err != nil || rw.Flush() != nil {
		return
	}
	// Wait briefly for the client's close frame, so the close is clean.
	_, _ = bufio.NewReader(rw).ReadByte()
}
