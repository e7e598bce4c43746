// Command qmp-ws-bridge serves QEMU QMP sockets over WebSocket. QEMU's own
// websocket chardev sends the greeting but never answers a command, so
// browsers and WebSocket clients reach QMP through this bridge:
//
//	qmp-ws-bridge --listen 127.0.0.1:4700 --backend vm1=unix:/run/vm1.qmp --console
//
// Each backend is served at /vm/NAME; the WebSocket carries the QMP byte
// stream unchanged in binary frames (subprotocol "binary"). One client per
// backend at a time, as QEMU serves one: a second client is closed at once
// with status 1013 and reason "busy: …"; an unreachable backend closes the
// client with status 1014 and the reason. --allow-origin restricts browser
// Origins (default: same origin: scheme, host and port), --token requires a
// bearer token (Authorization header, or access_token query parameter for
// browsers), checked before anything else, --idle-timeout releases a
// backend whose client stays silent, --tls-cert/--tls-key serve wss://.
// --console serves a web page at / that connects to a backend, shows
// events and runs commands. --record DIR writes each client connection's
// QMP session with its backend to DIR as a transcript (package
// transcript), TIME-NAME.jsonl, which transcript.NewQMPPeer replays.
// SIGINT or SIGTERM stops the bridge cleanly: clients get a close frame,
// backends are disconnected.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Limits of the HTTP server, against clients that open connections and
// hold them: the wait for a request's head, the wait for the next request
// on a kept-alive connection (without it an idle one was held forever),
// and the size of a request's head. Variables for the tests.
var (
	headerTimeout  = 10 * time.Second
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 64 << 10
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type multiFlag []string

// String implements flag.Value.
func (m *multiFlag) String() string { return strings.Join(*m, ",") }

// Set implements flag.Value: each use adds one.
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// run is the program; it returns the exit status when ctx ends or the
// server fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qmp-ws-bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var backends, origins multiFlag
	listen := fs.String("listen", "127.0.0.1:4700", "serve on `HOST:PORT` (port 0 picks one)")
	fs.Var(&backends, "backend", "serve QMP socket ADDRESS at /vm/NAME, as `NAME=ADDRESS` with unix:/path, tcp:host:port or ws[s]://… (repeatable)")
	fs.Var(&origins, "allow-origin", "accept browser `ORIGIN` (scheme://host[:port], or *; repeatable; default same origin)")
	token := fs.String("token", os.Getenv("QMP_BRIDGE_TOKEN"), "require this bearer `TOKEN` (default $QMP_BRIDGE_TOKEN)")
	certFile := fs.String("tls-cert", "", "serve TLS (wss://) with this certificate `FILE`")
	keyFile := fs.String("tls-key", "", "the TLS key `FILE`")
	console := fs.Bool("console", false, "serve the web console at /")
	idle := fs.Duration("idle-timeout", 0, "disconnect a client that sends nothing for `DURATION`, releasing its backend (default: never)")
	verbose := fs.Bool("v", false, "log every connection")
	record := fs.String("record", "", "record each client connection's QMP session with its backend in `DIR` as a transcript, TIME-NAME.jsonl (UTC time, backend name), for transcript.NewQMPPeer to replay")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "qmp-ws-bridge: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if (*certFile == "") != (*keyFile == "") {
		fmt.Fprintln(stderr, "qmp-ws-bridge: --tls-cert and --tls-key go together")
		return 2
	}
	cfg := Config{Backends: map[string]string{}, AllowedOrigins: origins, Token: *token, Console: *console, IdleTimeout: *idle, RecordDir: *record}
	for _, b := range backends {
		name, addr, ok := strings.Cut(b, "=")
		if !ok {
			fmt.Fprintf(stderr, "qmp-ws-bridge: --backend %q: want NAME=ADDRESS\n", b)
			return 2
		}
		if _, dup := cfg.Backends[name]; dup {
			fmt.Fprintf(stderr, "qmp-ws-bridge: backend %q given twice\n", name)
			return 2
		}
		cfg.Backends[name] = addr
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	bridge, err := NewBridge(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "qmp-ws-bridge: %v\n", err)
		return 2
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "qmp-ws-bridge: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: bridge, ReadHeaderTimeout: headerTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	scheme := "ws"
	serve := func() error { return srv.Serve(ln) }
	if *certFile != "" {
		scheme = "wss"
		serve = func() error { return srv.ServeTLS(ln, *certFile, *keyFile) }
	}
	for _, name := range bridge.Names() {
		fmt.Fprintf(stdout, "qmp-ws-bridge: %s://%s/vm/%s -> %s\n", scheme, ln.Addr(), name, cfg.Backends[name])
	}
	if *console {
		fmt.Fprintf(stdout, "qmp-ws-bridge: console at %s://%s/\n", strings.Replace(scheme, "ws", "http", 1), ln.Addr())
	}

	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		bridge.Close()
		fmt.Fprintf(stderr, "qmp-ws-bridge: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	bridge.Close()
	<-errc
	fmt.Fprintln(stdout, "qmp-ws-bridge: stopped")
	return 0
}
