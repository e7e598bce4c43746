package qmptest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// DefaultReadBufferSize is the read buffer of each connection when
// Config.ReadBufferSize is zero: clients send small commands, and an idle
// connection should cost little (the scale benchmarks open 10,000).
const DefaultReadBufferSize = 4 << 10

// DefaultSchemaSize is the size of the query-qmp-schema reply when
// Config.SchemaSize is zero: about what QEMU 7.2 sends (207 KB), larger than
// the 64 KiB line limit that breaks some clients.
const DefaultSchemaSize = 207 << 10

// DefaultEventQueue is the number of events that may wait for room in one
// client's backlog when Config.EventQueue is zero.
const DefaultEventQueue = 1024

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("qmptest: server closed")

// Config configures a Server. The zero value behaves like QEMU 7.2 started
// with -machine none: one client at a time, a running VM, the oob capability
// offered.
type Config struct {
	// MultiClient serves any number of clients at once, each with its own
	// connection goroutines. The default serves one client at a time, as a
	// QEMU monitor does: the next client is accepted when the previous one
	// has left, and a reply to a command still running when its client
	// left goes to the next client.
	MultiClient bool
	// Version is announced in the greeting and by query-version; zero means
	// QEMU 7.2.0, package "wirereactor".
	Version qmp.Version
	// Capabilities offered in the greeting; nil means ["oob"].
	Capabilities []string
	// Name is what query-name returns (QEMU's -name); empty means none.
	Name string
	// StartPaused starts the VM in the "prelaunch" state, like QEMU's -S:
	// cont starts it.
	StartPaused bool
	// SchemaSize is the approximate size in bytes of the query-qmp-schema
	// reply; zero means DefaultSchemaSize.
	SchemaSize int
	// MaxMessageSize bounds one message from a client; zero means the
	// qmp.ServerMachine default (10 MiB).
	MaxMessageSize int
	// ReadBufferSize is each connection's read buffer; zero means
	// DefaultReadBufferSize.
	ReadBufferSize int
	// Now stamps events; nil means time.Now.
	Now func() time.Time
	// Logger receives the connections' logs; nil means a logger that
	// discards everything (a fake should not clutter test output).
	Logger *slog.Logger
	// MaxClientBacklog bounds the bytes waiting to be written to one
	// client; zero means transport.DefaultMaxPendingOutput (1 MiB). An
	// event that finds a client's backlog beyond it drops that client (see
	// Emit); a reply waits for room, as QEMU's monitor does.
	MaxClientBacklog int
	// EventQueue bounds the events waiting for room in one client's
	// backlog; zero means DefaultEventQueue. A client whose queue is full
	// when an event comes cannot keep up: it is dropped (see Emit).
	EventQueue int
	// Freezable lets Freeze stop the server as SIGSTOP stops QEMU. Every
	// connection is then wrapped, which costs it the transport's direct
	// writes and nothing else.
	Freezable bool
}

// HandlerFunc answers one command. args is the command's raw "arguments"
// object (nil when absent); it stays valid after the call.
//
// The result is encoded as the reply's "return" value: nil means {}, a
// json.RawMessage or []byte is sent as is (it must be valid JSON), anything
// else goes through encoding/json. An error becomes an error reply: an
// *Error gives its class and description, ErrNoReply sends nothing,
// ErrDropConnection closes the connection, and any other error is a
// GenericError with the error's text.
//
// ctx carries the connection (for Emit, EmitAfter, WriteRaw, ReceivedFiles)
// and ends when the server closes — not when the client disconnects: like
// QEMU, the server finishes a command whose client left.
type HandlerFunc func(ctx context.Context, args json.RawMessage) (any, error)

// Error is an error reply a handler returns: {"error": {"class": Class,
// "desc": Desc}}.
type Error struct {
	Class string
	Desc  string
}

// Error returns "Class: Desc", as a client would print the reply.
func (e *Error) Error() string { return e.Class + ": " + e.Desc }

// Errorf returns an *Error of class with a formatted description.
func Errorf(class, format string, a ...any) *Error {
	return &Error{Class: class, Desc: fmt.Sprintf(format, a...)}
}

// ErrNoReply, returned by a handler, sends no reply: the command stays
// pending on the client, as with a QEMU that hangs.
var ErrNoReply = errors.New("qmptest: no reply")

// ErrDropConnection, returned by a handler, closes the connection after
// everything queued before it was written, without a reply.
var ErrDropConnection = errors.New("qmptest: connection dropped")

// Server is an in-process QMP server, a fake QEMU, built on qmp.ServerMachine
// and transport.Session. Register handlers with Handle (the default set
// behaves like QEMU; see NewServer), start it with Start, Serve or ServeConn,
// point a qmpclient.Client at Addr, and Close it.
//
// Each connection runs the session's read and write loops and one goroutine
// that executes its commands in order, as QEMU's monitor does. Close ends
// every connection and joins every goroutine the server started.
type Server struct {
	cfg    Config
	mcfg   qmp.ServerMachineConfig
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	hmu      sync.RWMutex
	handlers map[string]HandlerFunc

	mu        sync.Mutex
	closed    bool
	addr      string
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	turn      chan struct{} // one-client mode: held while a client is served
	stale     []staleReply  // replies whose client left, for the next one
	status    string        // the VM's runstate, as query-status names it
	fds       map[string]*os.File
	fdsets    []fdset
	served    int
	slow      int           // clients dropped for falling behind on events
	thawed    chan struct{} // nil unless frozen; closed by Thaw
}

type staleReply struct {
	reply func(m *qmp.ServerMachine) error
}

type fdset struct {
	id  int
	fds []fdEntry
}

type fdEntry struct {
	f      *os.File
	opaque string
}

// NewServer returns a server with QEMU's default command set:
//
//   - query-status, stop, cont: a runstate that stop and cont change, with
//     STOP and RESUME events (before the reply, as QEMU sends them);
//   - query-version, query-name, query-commands (every registered command);
//   - quit: the SHUTDOWN event, the reply, then the connection closes;
//   - system_powerdown: the reply, then the POWERDOWN event;
//   - human-monitor-command: info status, info version, info name, stop,
//     cont, help;
//   - query-qmp-schema: a large reply (Config.SchemaSize);
//   - getfd, closefd, add-fd, query-fdsets: descriptors passed over a unix
//     socket (see qmpclient.Client.ExecuteWithFiles);
//
// and every other command answered with CommandNotFound in QEMU's words.
// Handle replaces or adds commands.
func NewServer(cfg Config) *Server {
	if cfg.Version == (qmp.Version{}) {
		cfg.Version = qmp.Version{QEMU: qmp.VersionTriple{Major: 7, Minor: 2}, Package: "wirereactor"}
	}
	if cfg.SchemaSize <= 0 {
		cfg.SchemaSize = DefaultSchemaSize
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = DefaultReadBufferSize
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = DefaultEventQueue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		mcfg:      qmp.ServerMachineConfig{Version: cfg.Version, Capabilities: cfg.Capabilities, MaxMessageSize: cfg.MaxMessageSize},
		ctx:       ctx,
		cancel:    cancel,
		handlers:  make(map[string]HandlerFunc),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		turn:      make(chan struct{}, 1),
		status:    "running",
		fds:       make(map[string]*os.File),
	}
	if cfg.StartPaused {
		s.status = "prelaunch"
	}
	s.registerDefaults()
	return s
}

// Handle registers h for command name, replacing any handler (a default
// one included); a nil h unregisters the command, so it is CommandNotFound.
// It is safe to call while serving.
func (s *Server) Handle(name string, h HandlerFunc) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if h == nil {
		delete(s.handlers, name)
		return
	}
	s.handlers[name] = h
}

// Commands returns the registered command names, sorted.
func (s *Server) Commands() []string {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	names := make([]string, 0, len(s.handlers))
	for n := range s.handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *Server) handler(name string) HandlerFunc {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.handlers[name]
}

// Start opens a listening socket at addr — "unix:/path", "tcp:host:port"
// (port 0 picks one), "ws://host:port/path" — and serves it in the
// background until Close. Addr then returns what a qmpclient.Client dials.
func (s *Server) Start(ctx context.Context, addr string) error {
	lo, err := endpoint.ParseListen(addr)
	if err != nil {
		return err
	}
	return s.StartEndpoint(ctx, lo)
}

// StartEndpoint is Start with any endpoint (a unix.Endpoint, a tcp.Endpoint
// with TLS, a ws.Endpoint serving wss://, …).
func (s *Server) StartEndpoint(ctx context.Context, lo transport.ListenOpener) error {
	ln, err := lo.Listen(ctx)
	if err != nil {
		return fmt.Errorf("qmptest: listen: %w", err)
	}
	if err := s.track(ln); err != nil {
		return err
	}
	if e, ok := lo.(ws.Endpoint); ok && strings.HasPrefix(e.URL, "wss://") {
		s.mu.Lock()
		s.addr = strings.Replace(s.addr, "ws://", "wss://", 1)
		s.mu.Unlock()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.acceptLoop(ln)
	}()
	return nil
}

// Serve accepts connections on ln until Close and returns ErrServerClosed
// (or ln's error, if it failed first). ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.track(ln); err != nil {
		return err
	}
	s.wg.Add(1)
	defer s.wg.Done()
	return s.acceptLoop(ln)
}

// track records ln for Close and Addr.
func (s *Server) track(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.addr == "" {
		s.addr = addrOf(ln)
	}
	return nil
}

// addrOf writes ln's address in the syntax qmpclient.Client dials.
func addrOf(ln net.Listener) string {
	if wl, ok := ln.(*ws.Listener); ok {
		return wl.URL()
	}
	a := ln.Addr()
	switch a.Network() {
	case "unix":
		return "unix:" + a.String()
	case "tcp", "tcp4", "tcp6":
		return "tcp:" + a.String()
	}
	return a.String()
}

// Addr returns the address of the first listener, as qmpclient.Client.Connect
// takes it ("unix:/path", "tcp:127.0.0.1:port", "ws://127.0.0.1:port/path"),
// or "" before one is open.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) acceptLoop(ln net.Listener) error {
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	for {
		if !s.cfg.MultiClient {
			// QEMU accepts the next client only when the previous one
			// has left.
			select {
			case s.turn <- struct{}{}:
			case <-s.ctx.Done():
				return ErrServerClosed
			}
		}
		nc, err := ln.Accept()
		if err != nil {
			if !s.cfg.MultiClient {
				<-s.turn
			}
			if s.ctx.Err() != nil {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !s.startConn(nc, !s.cfg.MultiClient) && !s.cfg.MultiClient {
			<-s.turn
		}
	}
}

// ServeConn serves one already open connection (one end of net.Pipe, an
// accepted socket) in the background; the server owns nc from then on. In
// one-client mode it waits for its turn like an accepted connection. It
// returns ErrServerClosed after Close.
func (s *Server) ServeConn(nc net.Conn) error {
	if !s.cfg.MultiClient {
		select {
		case s.turn <- struct{}{}:
		case <-s.ctx.Done():
			nc.Close()
			return ErrServerClosed
		}
	}
	if !s.startConn(nc, !s.cfg.MultiClient) {
		if !s.cfg.MultiClient {
			<-s.turn
		}
		return ErrServerClosed
	}
	return nil
}

// Connections returns the number of clients being served.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Served returns how many connections the server has accepted in all.
func (s *Server) Served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Close stops accepting, closes every connection without flushing, cancels
// running handlers, waits for every goroutine the server started, and
// closes the descriptors clients passed.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, f := range s.fds {
		f.Close()
		delete(s.fds, name)
	}
	for _, set := range s.fdsets {
		for _, e := range set.fds {
			e.f.Close()
		}
	}
	s.fdsets = nil
	return nil
}

// Emit sends event name with data (nil for none; a json.RawMessage is sent
// as is, anything else is encoded) to every client that finished
// negotiation, as QEMU broadcasts events to every monitor. It never waits
// for a client: events beyond a client's backlog (Config.MaxClientBacklog)
// wait in its bounded event queue (Config.EventQueue), and a client whose
// queue is full cannot keep up: it is disconnected and counted
// (SlowClientsDropped), and the others are served as before.
func (s *Server) Emit(name string, data any) error {
	raw, err := encodeEvent(data)
	if err != nil {
		return err
	}
	s.emitRaw(name, raw)
	return nil
}

// emitRaw sends an event with raw data to every negotiated client.
func (s *Server) emitRaw(name string, raw []byte) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	ev := queuedEvent{name: name, data: raw, ts: s.cfg.Now()}
	for _, c := range conns {
		c.sendEvent(ev)
	}
}

// SlowClientsDropped returns how many clients were disconnected because
// their backlog was full when an event came.
func (s *Server) SlowClientsDropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slow
}

// Freeze stops the server as SIGSTOP stops QEMU: from now on no connection
// reads or writes (a read or write already under way finishes), so clients'
// commands pile up in the kernel's socket buffers and then in their own
// output queues, and new clients are accepted by the kernel but never
// greeted. Close still ends everything. Thaw resumes. It panics unless
// Config.Freezable is set.
func (s *Server) Freeze() {
	if !s.cfg.Freezable {
		panic("qmptest: Freeze needs Config.Freezable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.thawed == nil {
		s.thawed = make(chan struct{})
	}
}

// Thaw undoes Freeze.
func (s *Server) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.thawed != nil {
		close(s.thawed)
		s.thawed = nil
	}
}

// waitThawed returns nil when the server is not frozen, or once it is
// thawed; net.ErrClosed if closed is closed first.
func (s *Server) waitThawed(closed <-chan struct{}) error {
	s.mu.Lock()
	thawed := s.thawed
	s.mu.Unlock()
	if thawed == nil {
		return nil
	}
	select {
	case <-thawed:
		return nil
	case <-closed:
		return net.ErrClosed
	}
}

// freezableConn is a connection that stops while its server is frozen.
type freezableConn struct {
	net.Conn
	s         *Server
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *freezableConn) Read(p []byte) (int, error) {
	if err := c.s.waitThawed(c.closed); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *freezableConn) Write(p []byte) (int, error) {
	if err := c.s.waitThawed(c.closed); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *freezableConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// DropConnections closes every client connection at once, as a crashing
// QEMU would; the server keeps accepting.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
}

// Status returns the VM's runstate as query-status reports it ("running",
// "paused", "prelaunch", …).
func (s *Server) Status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// FD returns the descriptor a client passed with getfd under name, nil if
// none. The server keeps owning it (Close closes it).
func (s *Server) FD(name string) *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fds[name]
}

// encodeResult turns a handler's result into raw JSON, nil meaning {}.
// Raw results are not validated here: ServerMachine.Return does it.
func encodeResult(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return x, nil
	case []byte:
		return x, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("qmptest: encoding %T: %w", v, err)
	}
	return b, nil
}

// encodeEvent turns an event's data into raw JSON, nil meaning none.
func encodeEvent(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if x == nil {
			return nil, nil
		}
		if !json.Valid(x) {
			return nil, errors.New("qmptest: event data is not valid JSON")
		}
		return x, nil
	case []byte:
		return encodeEvent(json.RawMessage(x))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("qmptest: encoding %T: %w", v, err)
	}
	return b, nil
}

// StartUnix starts a server on a unix socket in a fresh temporary directory
// and closes it (and removes the directory) when tb's test ends: the
// shortest way to a fake QEMU in a test. It fails tb on error.
func StartUnix(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	// Not tb.TempDir: its paths can exceed the 108-byte limit of a unix
	// socket address.
	dir, err := os.MkdirTemp("", "qmptest")
	if err != nil {
		tb.Fatalf("qmptest: %v", err)
	}
	s := NewServer(cfg)
	tb.Cleanup(func() {
		s.Close()
		os.RemoveAll(dir)
	})
	if err := s.Start(context.Background(), "unix:"+filepath.Join(dir, "qmp.sock")); err != nil {
		tb.Fatalf("qmptest: %v", err)
	}
	return s
}
