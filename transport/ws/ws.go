// Package ws carries transport sessions over WebSockets (RFC 6455), client
// and server, as a byte stream of binary frames: a message of the protocol
// may span WebSocket frames and one frame may hold many messages; the
// machine's decoder re-splits them.
//
// The client offers subprotocol "binary", which QEMU's websocket chardev
// expects, and the server accepts it. The server's opening handshake is
// golang.org/x/net/websocket's; the client's is this package's own, so that
// a refused upgrade reaches the caller as a *HandshakeError with the HTTP
// status and the server's message. After the handshake the connection is this package's
// own Conn, which avoids x/net/websocket's hazards: writes are always binary
// frames and a text frame from the peer is a protocol error; pings are
// answered by the reader, never waiting for a blocked Write; Close never
// waits behind a blocked Write; masking runs eight bytes at a time and never
// modifies the caller's buffer; frames are limited in size; Close performs
// the close handshake.
package ws

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"

	"github.com/wirereactor/wirereactor/transport/tcp"
)

// Subprotocol is the WebSocket subprotocol offered and accepted.
const Subprotocol = "binary"

// Endpoint is a WebSocket URL. It implements transport.Dialer and
// transport.ListenOpener.
type Endpoint struct {
	// URL is ws://host:port/path or wss://host:port/path. Listen serves
	// its path on its host:port (port 0 picks a free port; see
	// Listener.URL).
	URL string
	// TLS is the client config for wss:// dialing (nil means the system
	// roots) and the server config (with a certificate) for wss://
	// listening. It is cloned, never modified.
	TLS *tls.Config
	// Origin is the Origin header the client sends; empty means the URL's
	// scheme-equivalent http(s)://host.
	Origin string
	// AllowedOrigins lists the Origin values the server accepts, as
	// "scheme://host[:port]", or "*" for any. Empty means same-origin
	// (scheme, host and port; see CheckOrigin). Requests without an Origin
	// header (non-browser clients) are accepted.
	AllowedOrigins []string
	// Header adds headers to the client's handshake request.
	Header http.Header
	// MaxFrameSize limits frame payloads in both directions; zero means
	// DefaultMaxFrameSize.
	MaxFrameSize int
	// CloseTimeout bounds the wait for the peer's close frame; zero means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// HandshakeTimeout bounds the server's wait for the client's upgrade
	// request, and for a next one on a connection whose request was
	// refused; zero means 10 seconds.
	HandshakeTimeout time.Duration
}

func (e Endpoint) options(protocol string) connOptions {
	o := connOptions{maxFrame: e.MaxFrameSize, closeTimeout: e.CloseTimeout, protocol: protocol}
	if o.maxFrame <= 0 {
		o.maxFrame = DefaultMaxFrameSize
	}
	if o.closeTimeout <= 0 {
		o.closeTimeout = DefaultCloseTimeout
	}
	return o
}

func (e Endpoint) parse() (*url.URL, bool, error) {
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil, false, fmt.Errorf("ws: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws":
		return u, false, nil
	case "wss":
		return u, true, nil
	}
	return nil, false, fmt.Errorf("ws: URL scheme %q is not ws or wss", u.Scheme)
}

func hostPort(u *url.URL, secure bool) string {
	if u.Port() != "" {
		return u.Host
	}
	if secure {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// Dial connects and performs the opening handshake, honouring ctx. The
// connection is a *Conn.
func (e Endpoint) Dial(ctx context.Context) (net.Conn, error) { return e.DialWS(ctx) }

// DialWS is Dial returning the concrete type.
func (e Endpoint) DialWS(ctx context.Context) (*Conn, error) {
	u, secure, err := e.parse()
	if err != nil {
		return nil, err
	}
	origin := e.Origin
	if origin == "" {
		scheme := "http"
		if secure {
			scheme = "https"
		}
		origin = scheme + "://" + u.Host
	}
	te := tcp.Endpoint{Address: hostPort(u, secure)}
	if secure {
		te.TLS = e.TLS
		if te.TLS == nil {
			te.TLS = &tls.Config{}
		}
	}
	nc, err := te.Dial(ctx)
	if err != nil {
		return nil, err
	}
	// The handshake is bounded by ctx: its deadline, and a cancellation
	// that expires the socket's deadline.
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	protocol, leftover, err := clientHandshake(nc, u, origin, e.Header)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return newConn(nc, true, leftover, e.options(protocol)), nil
}

// ErrOriginRejected is the cause of a refused upgrade whose Origin is not
// allowed.
var ErrOriginRejected = errors.New("ws: origin not allowed")

// ErrNoBinaryProtocol is the cause of a refused upgrade whose client offered
// subprotocols but not "binary".
var ErrNoBinaryProtocol = errors.New(`ws: client did not offer subprotocol "binary"`)

// CheckOrigin applies a WebSocket server's Origin rule to an upgrade
// request, the one Endpoint.Upgrade applies with Endpoint.AllowedOrigins:
// allowed lists the accepted Origins as "scheme://host[:port]" (compared
// without regard to case), or "*" for any. An empty list means same-origin:
// the Origin's scheme must be https for a request that came over TLS
// (r.TLS set) and http otherwise, and its host[:port] must equal the
// request's Host. Behind a proxy that terminates TLS the request looks
// plain: list the Origin explicitly there. A request without an Origin
// header (a client that is not a browser) is accepted. A refusal wraps
// ErrOriginRejected.
func CheckOrigin(r *http.Request, allowed []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	if len(allowed) > 0 {
		if slices.Contains(allowed, "*") || slices.ContainsFunc(allowed, func(a string) bool {
			return strings.EqualFold(a, origin)
		}) {
			return nil
		}
		return fmt.Errorf("%w: %q", ErrOriginRejected, origin)
	}
	want := "http"
	if r.TLS != nil {
		want = "https"
	}
	u, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Scheme, want) || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("%w: %q is not the same origin as %s://%s", ErrOriginRejected, origin, want, r.Host)
	}
	return nil
}

// Upgrade answers a WebSocket upgrade request on an HTTP server and returns
// the connection; the handler owns it from then on (the HTTP server no
// longer does). On failure the client has been answered with an HTTP error
// and the error says why. Only e's server fields are used (AllowedOrigins,
// MaxFrameSize, CloseTimeout).
func (e Endpoint) Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	if err := CheckOrigin(r, e.AllowedOrigins); err != nil {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return nil, err
	}
	if err := checkUpgradeRequest(w, r); err != nil {
		return nil, err
	}
	// x/net/websocket reads the first Connection line only; the request
	// has been checked, so give it the canonical form.
	r = r.Clone(r.Context())
	r.Header.Set("Connection", "Upgrade")
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "websocket upgrade not supported", http.StatusInternalServerError)
		return nil, errors.New("ws: response writer cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("ws: hijack: %w", err)
	}
	// Bytes the client sent after its request are already buffered.
	var leftover []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		leftover = append([]byte(nil), b...)
	}
	var (
		protocol string
		accepted bool
		hsErr    error
	)
	srv := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			switch {
			case slices.Contains(cfg.Protocol, Subprotocol):
				cfg.Protocol = []string{Subprotocol}
				protocol = Subprotocol
			case len(cfg.Protocol) > 0:
				hsErr = ErrNoBinaryProtocol
				return hsErr
			}
			return nil
		},
		Handler: func(*websocket.Conn) { accepted = true },
	}
	fw := &hijacked{nc: nc}
	srv.ServeHTTP(fw, r)
	if !accepted {
		nc.Close()
		if hsErr == nil {
			hsErr = errors.New("ws: bad upgrade request")
		}
		return nil, hsErr
	}
	return newConn(nc, false, leftover, e.options(protocol)), nil
}

// checkUpgradeRequest applies RFC 6455 §4.2.1 to an opening handshake
// before the connection is taken, answering a refusal with an HTTP error
// that says what was wrong: a GET of HTTP/1.1 or later, an Upgrade header
// naming websocket, a Connection header holding the upgrade token (on any
// of its lines), Sec-WebSocket-Version 13 (426 with the version otherwise,
// §4.4) and a Sec-WebSocket-Key of 16 bytes in base64.
func checkUpgradeRequest(w http.ResponseWriter, r *http.Request) error {
	refuse := func(status int, msg string) error {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, "ws: "+msg, status)
		return fmt.Errorf("ws: bad upgrade request: %s", msg)
	}
	switch {
	case r.Method != http.MethodGet:
		return refuse(http.StatusMethodNotAllowed, fmt.Sprintf("method %s: an upgrade is a GET", r.Method))
	case !r.ProtoAtLeast(1, 1):
		return refuse(http.StatusBadRequest, fmt.Sprintf("%s: an upgrade needs HTTP/1.1", r.Proto))
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return refuse(http.StatusBadRequest, fmt.Sprintf("Upgrade header %q does not name websocket", r.Header.Get("Upgrade")))
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return refuse(http.StatusBadRequest, fmt.Sprintf("Connection header %q lacks the upgrade token", strings.Join(r.Header.Values("Connection"), ", ")))
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return refuse(http.StatusUpgradeRequired, fmt.Sprintf("Sec-WebSocket-Version %q: only 13 is spoken", r.Header.Get("Sec-WebSocket-Version")))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return refuse(http.StatusBadRequest, fmt.Sprintf("want one Sec-WebSocket-Key header, got %d", len(keys)))
	}
	if k, err := base64.StdEncoding.DecodeString(keys[0]); err != nil || len(k) != 16 {
		return refuse(http.StatusBadRequest, fmt.Sprintf("Sec-WebSocket-Key %.40q is not 16 bytes in base64", keys[0]))
	}
	return nil
}

// hijacked is the http.ResponseWriter given to x/net/websocket's server
// handshake: it writes straight to the already hijacked connection and
// keeps x/net/websocket from closing it.
type hijacked struct {
	nc     net.Conn
	header http.Header
}

func (h *hijacked) Header() http.Header {
	if h.header == nil {
		h.header = http.Header{}
	}
	return h.header
}
func (h *hijacked) Write(p []byte) (int, error) { return h.nc.Write(p) }
func (h *hijacked) WriteHeader(int)             {}
func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r := bufio.NewReaderSize(eofReader{}, 16)
	return noClose{h.nc}, bufio.NewReadWriter(r, bufio.NewWriter(h.nc)), nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type noClose struct{ net.Conn }

func (noClose) Close() error { return nil }

// Listen serves WebSocket upgrades on the URL's host:port and path and
// returns a *Listener whose Accept yields *Conn values. With wss://, TLS
// must hold a certificate.
func (e Endpoint) Listen(ctx context.Context) (net.Listener, error) { return e.ListenWS(ctx) }

// ListenWS is Listen returning the concrete type.
func (e Endpoint) ListenWS(ctx context.Context) (*Listener, error) {
	u, secure, err := e.parse()
	if err != nil {
		return nil, err
	}
	te := tcp.Endpoint{Address: u.Host}
	if secure {
		if e.TLS == nil {
			return nil, errors.New("ws: listen: wss:// needs a TLS config with a certificate")
		}
		te.TLS = e.TLS
	}
	ln, err := te.Listen(ctx)
	if err != nil {
		return nil, err
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	l := &Listener{
		ln:     ln,
		conns:  make(chan *Conn),
		closed: make(chan struct{}),
		url:    &url.URL{Scheme: u.Scheme, Host: ln.Addr().String(), Path: u.Path},
	}
	timeout := e.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if !l.enter() {
			http.Error(w, "server closing", http.StatusServiceUnavailable)
			return
		}
		defer l.handlers.Done()
		c, err := e.Upgrade(w, r)
		if err != nil {
			return
		}
		select {
		case l.conns <- c:
		case <-l.closed:
			c.nc.Close()
		}
	})
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: timeout, IdleTimeout: timeout, ErrorLog: nil}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(ln)
	}()
	return l, nil
}

// Listener is a WebSocket server yielding upgraded connections. Close stops
// it and waits for its goroutines; connections already accepted stay open.
type Listener struct {
	ln     net.Listener
	srv    *http.Server
	url    *url.URL
	conns  chan *Conn
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup // the HTTP server

	mu       sync.Mutex
	closing  bool
	handlers sync.WaitGroup // upgrade handlers in progress
}

// enter registers an upgrade handler unless the listener is closing.
func (l *Listener) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.handlers.Add(1)
	return true
}

// URL returns the URL clients dial (with the actual port).
func (l *Listener) URL() string { return l.url.String() }

// Accept implements net.Listener; the connection is a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops listening, refuses pending upgrades and joins the server.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
		close(l.closed)
		err = l.srv.Close()
		l.wg.Wait()
		l.handlers.Wait()
	})
	return err
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }
