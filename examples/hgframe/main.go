// Command hgframe is a server and a client speaking Mercurial's unified
// frame protocol (wire protocol version 2) with the reactor package's
// ServerMachine and ClientMachine, driven by transport sessions, over TCP
// or WebSocket.
//
//	go run ./examples/hgframe                 # demo: a server and a client in one process
//	go run ./examples/hgframe serve tcp:127.0.0.1:9000
//	go run ./examples/hgframe serve ws://127.0.0.1:9000/hg
//	go run ./examples/hgframe call tcp:127.0.0.1:9000 echo message=hello
//	go run ./examples/hgframe call tcp:127.0.0.1:9000 stream count=5
//	go run ./examples/hgframe call tcp:127.0.0.1:9000 fail message=oops
//
// The server's commands are echo (returns its arguments), stream (count=N
// objects, sent as Mercurial coalesces them into frames) and fail (a
// command error). Over TCP the server is usable by Mercurial's own Python
// clientreactor on a plain socket; see testdata/hg_client.py.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/ws"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  hgframe                        run a server and a client in one process
  hgframe serve [-record DIR] ADDRESS
                                 serve on tcp:HOST:PORT or ws://HOST:PORT/PATH,
                                 recording each connection in DIR/conn-N.jsonl
  hgframe call ADDRESS COMMAND [key=value …]
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return demo(ctx, stdout, stderr)
	}
	switch args[0] {
	case "serve":
		var s Server
		if len(args) > 1 && args[1] == "-record" && len(args) == 4 {
			s.RecordDir, args = args[2], args[2:]
		} else if len(args) > 1 && args[1] == "-record" {
			args = nil
		}
		if len(args) != 2 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return serve(ctx, &s, args[1], stdout, stderr)
	case "call":
		if len(args) < 3 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return call(ctx, args[1], args[2], args[3:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// endpoint turns tcp:HOST:PORT or ws(s)://… into an endpoint.
func endpoint(addr string) (interface {
	transport.Dialer
	transport.ListenOpener
}, error) {
	switch {
	case strings.HasPrefix(addr, "tcp:"):
		return tcp.Endpoint{Address: strings.TrimPrefix(addr, "tcp:")}, nil
	case strings.HasPrefix(addr, "ws://"), strings.HasPrefix(addr, "wss://"):
		return ws.Endpoint{URL: addr}, nil
	}
	return nil, fmt.Errorf("address %q: want tcp:HOST:PORT or ws://HOST:PORT/PATH", addr)
}

// listenAddress is what a client dials to reach ln.
func listenAddress(ln net.Listener) string {
	if wl, ok := ln.(*ws.Listener); ok {
		return wl.URL()
	}
	return "tcp:" + ln.Addr().String()
}

func serve(ctx context.Context, s *Server, addr string, stdout, stderr io.Writer) int {
	ep, err := endpoint(addr)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 2
	}
	ln, err := ep.Listen(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "hgframe: serving on %s\n", listenAddress(ln))
	if err := s.Serve(ctx, ln); err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 1
	}
	return 0
}

// parseArgs turns key=value words into command arguments (byte strings;
// integers for digits).
func parseArgs(words []string) (map[hgcbor.Bytes]any, error) {
	if len(words) == 0 {
		return nil, nil
	}
	args := map[hgcbor.Bytes]any{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: want key=value", w)
		}
		var n int64
		if _, err := fmt.Sscan(v, &n); err == nil && fmt.Sprint(n) == v {
			args[hgcbor.Bytes(k)] = n
		} else {
			args[hgcbor.Bytes(k)] = []byte(v)
		}
	}
	return args, nil
}

func call(ctx context.Context, addr, name string, words []string, stdout, stderr io.Writer) int {
	ep, err := endpoint(addr)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 2
	}
	args, err := parseArgs(words)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, ep)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 1
	}
	defer c.Close()
	objs, err := c.Call(ctx, name, args)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %s: %v\n", name, err)
		return 1
	}
	for _, o := range objs {
		fmt.Fprintln(stdout, hgcbor.PythonLiteral(o))
	}
	return 0
}

// demo runs a server on a loopback port and calls each command once.
func demo(ctx context.Context, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ep := tcp.Endpoint{Address: "127.0.0.1:0"}
	ln, err := ep.Listen(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 1
	}
	var s Server
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	fmt.Fprintf(stdout, "server on tcp:%s\n", ln.Addr())
	c, err := Dial(ctx, tcp.Endpoint{Address: ln.Addr().String()})
	if err != nil {
		fmt.Fprintf(stderr, "hgframe: %v\n", err)
		return 1
	}
	defer c.Close()
	calls := []struct {
		name string
		args map[hgcbor.Bytes]any
	}{
		{"echo", map[hgcbor.Bytes]any{"message": []byte("hello")}},
		{"stream", map[hgcbor.Bytes]any{"count": 3}},
		{"fail", map[hgcbor.Bytes]any{"message": []byte("on purpose")}},
	}
	for _, cl := range calls {
		objs, err := c.Call(ctx, cl.name, cl.args)
		var ce *CommandError
		switch {
		case errors.As(err, &ce):
			fmt.Fprintf(stdout, "%s -> %v\n", cl.name, ce)
		case err != nil:
			fmt.Fprintf(stderr, "hgframe: %s: %v\n", cl.name, err)
			return 1
		default:
			for _, o := range objs {
				fmt.Fprintf(stdout, "%s -> %s\n", cl.name, hgcbor.PythonLiteral(o))
			}
		}
	}
	return 0
}
