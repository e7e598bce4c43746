package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/ws"
)

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
	// Console serves the web console at /.
	Console bool
	// DialTimeout bounds connecting to a backend; zero means 5 seconds.
	DialTimeout time.Duration
	// IdleTimeout, if positive, closes a client that sends nothing for
	// that long (status 1008, "idle for …"), releasing its backend.
	// Events from the backend do not count as activity. Zero means no
	// limit: a console may watch events for days.
	IdleTimeout time.Duration
	// Logger receives the bridge's logs; nil means slog.Default().
	Logger *slog.Logger
	// RecordDir, if set, records the QMP bytes between the bridge and the
	// backend of each client connection as a transcript (package
	// transcript, side "client") in this directory, created if missing:
	// TIME-NAME.jsonl, TIME in UTC so the names sort by time, NAME the
	// backend's.
	RecordDir string
}

// Bridge is an http.Handler relaying WebSocket clients to QMP sockets: the
// WebSocket carries QMP's byte stream unchanged in binary frames, in both
// directions. QEMU serves one client per monitor, so the bridge admits one
// client per backend at a time and closes a second one at once with status
// 1013 and the reason "busy: …". A backend that cannot be reached is
// reported the same way, after the upgrade, with status 1014 (Bad Gateway)
// and the reason.
type Bridge struct {
	cfg      Config
	dialers  map[string]transport.Dialer
	mu       sync.Mutex
	busy     map[string]*holder
	conns    map[net.Conn]struct{} // open client and backend connections
	closed   bool
	wg       sync.WaitGroup
	upgrader ws.Endpoint
	ctx      context.Context // cancelled by Close: ends backend dials
	stop     context.CancelFunc
}

// NewBridge checks cfg and returns a bridge.
func NewBridge(cfg Config) (*Bridge, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("no backends: give at least one NAME=ADDRESS")
	}
	b := &Bridge{cfg: cfg, dialers: map[string]transport.Dialer{}, busy: map[string]*holder{}, conns: map[net.Conn]struct{}{},
		upgrader: ws.Endpoint{AllowedOrigins: cfg.AllowedOrigins}}
	for name, addr := range cfg.Backends {
		if name == "" || strings.ContainsAny(name, "/?#") {
			return nil, fmt.Errorf("backend name %q: want a non-empty name without / ? #", name)
		}
		d, err := endpoint.Parse(addr)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		b.dialers[name] = d
	}
	if b.cfg.DialTimeout == 0 {
		b.cfg.DialTimeout = 5 * time.Second
	}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o700); err != nil {
			return nil, fmt.Errorf("record directory: %w", err)
		}
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	return b, nil
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

// ServeHTTP serves /vm/NAME, /backends (each backend's state as JSON, for
// the console and for monitoring) and with Console the page at /.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/vm/"):
		b.serveVM(w, r, strings.TrimPrefix(r.URL.Path, "/vm/"))
	case b.cfg.Console && r.URL.Path == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:")
		_, _ = io.WriteString(w, consolePage)
	case r.URL.Path == "/backends":
		if !b.authorized(r) {
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(b.States(r.Context()))
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

// BackendState is one backend's state as /backends reports it.
type BackendState struct {
	// Name is the backend's name, served at /vm/NAME.
	Name string `json:"name"`
	// Address is its QMP socket, unix:/path or tcp:host:port.
	Address string `json:"address"`
	// State is "free" (QEMU greeted a probe), "busy" (a client of the
	// bridge holds it, or QEMU's monitor is held by a client outside the
	// bridge and did not greet) or "down" (the socket refused the probe).
	State string `json:"state"`
	// Client is the holder's remote address, when a bridge client holds
	// the backend, and Since when it connected.
	Client string     `json:"client,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	// QEMU is the version in the greeting of a free backend.
	QEMU string `json:"qemu,omitempty"`
	// Error says why a backend is down or held outside the bridge.
	Error string `json:"error,omitempty"`
}

// Backend states.
const (
	StateFree = "free"
	StateBusy = "busy"
	StateDown = "down"
)

// probeTimeout bounds a probe of a free backend: its dial and its
// greeting.
const probeTimeout = 2 * time.Second

// States returns every backend's state, sorted by name. A backend that no
// client of the bridge holds is probed: dialed, its greeting read, and
// closed at once (QEMU queues a client that connects meanwhile until the
// probe leaves, so nothing is refused).
func (b *Bridge) States(ctx context.Context) []BackendState {
	names := b.Names()
	out := make([]BackendState, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		out[i] = BackendState{Name: name, Address: b.cfg.Backends[name]}
		b.mu.Lock()
		h := b.busy[name]
		b.mu.Unlock()
		if h != nil {
			since := h.since
			out[i].State, out[i].Client, out[i].Since = StateBusy, h.remote, &since
			continue
		}
		wg.Add(1)
		go func(st *BackendState, d transport.Dialer) {
			defer wg.Done()
			b.probe(ctx, st, d)
		}(&out[i], b.dialers[name])
	}
	wg.Wait()
	return out
}

// probe fills in the state of a backend no bridge client holds.
func (b *Bridge) probe(ctx context.Context, st *BackendState, d transport.Dialer) {
	ctx, cancel := context.WithTimeout(ctx, min(probeTimeout, b.cfg.DialTimeout))
	defer cancel()
	nc, err := d.Dial(ctx)
	if err != nil {
		st.State, st.Error = StateDown, err.Error()
		return
	}
	defer nc.Close()
	deadline, _ := ctx.Deadline()
	_ = nc.SetReadDeadline(deadline)
	var greeting struct {
		QMP *struct {
			Version struct {
				QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
			} `json:"version"`
		} `json:"QMP"`
	}
	if err := json.NewDecoder(io.LimitReader(nc, 64<<10)).Decode(&greeting); err != nil || greeting.QMP == nil {
		st.State = StateBusy
		st.Error = "no QMP greeting: the monitor is held outside the bridge, or is not QMP"
		if err != nil {
			st.Error += " (" + err.Error() + ")"
		}
		return
	}
	v := greeting.QMP.Version.QEMU
	st.State, st.QEMU = StateFree, fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
}

func (b *Bridge) serveVM(w http.ResponseWriter, r *http.Request, name string) {
	// The token first: nothing about the backends (which names exist,
	// which are busy) is revealed to a client without it.
	if !b.authorized(r) {
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	d, ok := b.dialers[name]
	if !ok {
		http.Error(w, fmt.Sprintf("no backend named %q", name), http.StatusNotFound)
		return
	}
	if err := ws.CheckOrigin(r, b.cfg.AllowedOrigins); err != nil {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !isUpgrade(r) {
		http.Error(w, fmt.Sprintf("/vm/%s is a WebSocket endpoint: connect with a WebSocket client (subprotocol %q)", name, ws.Subprotocol), http.StatusBadRequest)
		return
	}
	switch b.acquire(name, r.RemoteAddr) {
	case errClosing:
		http.Error(w, "the bridge is shutting down", http.StatusServiceUnavailable)
		return
	case errBusy:
		b.log().Info("refusing a second client", "backend", name, "remote", r.RemoteAddr)
		b.refuse(w, r, ws.CloseTryAgainLater, fmt.Sprintf("busy: backend %s already has a client", name))
		return
	}
	// Released as the relay closes the backend, before the client's close
	// handshake: a client reconnecting the moment its backend is gone must
	// not be refused as busy. QEMU keeps a connection that arrives in
	// between waiting until the old one is closed.
	release := sync.OnceFunc(func() { b.release(name) })
	defer release()

	// The backend is dialed only once the upgrade has succeeded: QEMU
	// serves one client per monitor, and a request that is not a
	// WebSocket must not take it.
	client, err := b.upgrader.Upgrade(w, r)
	if err != nil {
		b.log().Info("upgrade refused", "backend", name, "err", err)
		return
	}
	if !b.track(client) {
		_ = client.CloseWithStatus(ws.CloseGoingAway, "the bridge is shutting down")
		return
	}
	defer b.untrack(client)
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.DialTimeout)
	backend, err := d.Dial(ctx)
	cancel()
	if err == nil && b.cfg.RecordDir != "" {
		rec, rerr := b.startRecording(name, r.RemoteAddr)
		if rerr != nil {
			backend.Close()
			b.log().Warn("recording failed", "backend", name, "err", rerr)
			_ = client.CloseWithStatus(ws.CloseInternalError, "the bridge cannot record the session")
			return
		}
		defer b.finishRecording(rec) // after the relay closed both sides
		backend = transcript.RecordConn(backend, rec.rec)
	}
	if err == nil && !b.add(backend) {
		backend.Close()
		err = errClosing
	}
	if err != nil {
		b.log().Warn("backend unreachable", "backend", name, "err", err)
		_ = client.CloseWithStatus(ws.CloseBadGateway, fmt.Sprintf("backend %s unreachable: %v", name, err))
		return
	}
	defer b.remove(backend)
	b.log().Info("client connected", "backend", name, "remote", r.RemoteAddr)
	if idle := relay(client, backend, b.cfg.IdleTimeout, release); idle {
		b.log().Info("client idle: disconnected", "backend", name, "remote", r.RemoteAddr, "idle", b.cfg.IdleTimeout)
	} else {
		b.log().Info("client disconnected", "backend", name, "remote", r.RemoteAddr)
	}
}

// relay copies both ways until either side ends, then calls release and
// closes both. With idle > 0 a client that sends nothing for that long is
// closed with status 1008 and a reason saying so (events from the backend
// do not count: a silent holder must not keep a backend forever); relay
// then reports true.
func relay(client *ws.Conn, backend net.Conn, idle time.Duration, release func()) (idled bool) {
	done := make(chan struct{}, 2)
	var once sync.Once
	closeBoth := func(code uint16, reason string) {
		once.Do(func() {
			release()
			backend.Close()
			_ = client.CloseWithStatus(code, reason)
		})
	}
	var last atomic.Int64 // time of the client's last data, as UnixNano
	last.Store(time.Now().UnixNano())
	var fired atomic.Bool
	if idle > 0 {
		var timer *time.Timer
		timer = time.AfterFunc(idle, func() {
			if quiet := time.Since(time.Unix(0, last.Load())); quiet < idle {
				timer.Reset(idle - quiet)
				return
			}
			fired.Store(true)
			closeBoth(ws.ClosePolicyViolation, fmt.Sprintf("idle for %v: the backend is released", idle))
		})
		defer timer.Stop()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				if _, werr := backend.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		closeBoth(ws.CloseNormal, "")
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, backend)
		closeBoth(ws.CloseNormal, "")
		done <- struct{}{}
	}()
	<-done
	<-done
	return fired.Load()
}

var (
	errBusy    = errors.New("backend busy")
	errClosing = errors.New("bridge closing")
)

// holder is the client holding a backend.
type holder struct {
	remote string
	since  time.Time
}

// acquire reserves backend name for one client.
func (b *Bridge) acquire(name, remote string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return errClosing
	case b.busy[name] != nil:
		return errBusy
	}
	b.busy[name] = &holder{remote: remote, since: time.Now().UTC().Truncate(time.Second)}
	return nil
}

func (b *Bridge) release(name string) {
	b.mu.Lock()
	delete(b.busy, name)
	b.mu.Unlock()
}

// track registers a client's relay, unless the bridge is closing.
func (b *Bridge) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	return true
}

func (b *Bridge) untrack(c net.Conn) {
	b.remove(c)
	b.wg.Done()
}

// add registers a connection for Close, unless the bridge is closing.
func (b *Bridge) add(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Bridge) remove(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// Close ends every relayed connection (clients get a close frame with
// status 1001) and waits for the relays to finish, about one close timeout
// (a second) at most, however many clients do not answer. Run it after
// http.Server.Shutdown, which does not know about upgraded connections.
func (b *Bridge) Close() {
	b.mu.Lock()
	b.closed = true
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	b.stop()
	// All at once: each close handshake may wait a close timeout for a
	// client that does not answer.
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() {
			if wc, ok := c.(*ws.Conn); ok {
				_ = wc.CloseWithStatus(ws.CloseGoingAway, "the bridge is shutting down")
			} else {
				c.Close()
			}
		})
	}
	closing.Wait()
	b.wg.Wait()
}

// refuse answers a client the bridge will not serve: a WebSocket client
// is upgraded and closed at once with code and reason, so a browser sees
// why (an HTTP error before the upgrade reaches a page only as an
// anonymous failure).
// isUpgrade reports whether r asks for a WebSocket.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func (b *Bridge) refuse(w http.ResponseWriter, r *http.Request, code uint16, reason string) {
	c, err := b.upgrader.Upgrade(w, r)
	if err != nil {
		return
	}
	_ = c.CloseWithStatus(code, reason)
}
