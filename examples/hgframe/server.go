package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/reactor"
	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
)

// maxStreamCount bounds the objects the stream command sends, so a client
// cannot make the server build an unbounded response.
const maxStreamCount = 100000

// Server answers Mercurial frame-protocol commands on every connection a
// listener accepts:
//
//	echo    returns its arguments as one object
//	stream  count=N: returns N objects {b'index': i, b'line': b'…'}
//	fail    ends with a command error (its message argument, if any)
//
// Any other name is answered with a command error naming it.
type Server struct {
	Logger *slog.Logger // nil means slog.Default()
	// RecordDir, when set, records each connection as a transcript,
	// RecordDir/conn-N.jsonl, one frame per line in human syntax.
	RecordDir string

	wg    sync.WaitGroup
	conns atomic.Int64
}

// Serve accepts connections until ctx ends or ln fails, then closes ln
// and waits for the connections to end (ctx ending disconnects them).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// serveConn runs one connection: one session, one output stream.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	cfg := transport.Config[reactor.Command, *reactor.ServerMachine]{
		Name:       nc.RemoteAddr().String(),
		Logger:     s.Logger,
		NewMachine: func() *reactor.ServerMachine { return reactor.NewServerMachine(reactor.ServerMachineConfig{}) },
	}
	if s.RecordDir != "" {
		name := filepath.Join(s.RecordDir, fmt.Sprintf("conn-%d.jsonl", s.conns.Add(1)))
		f, err := os.Create(name)
		if err != nil {
			s.log().Warn("hgframe: record", "err", err)
			nc.Close()
			return
		}
		defer f.Close() // after Disconnect, which runs OnEnd
		rec, err := transcript.NewRecorder(f, transcript.RecorderConfig{SplitFrames: true,
			Header: transcript.Header{Protocol: "hgframe", Side: "server"}})
		if err != nil {
			s.log().Warn("hgframe: record", "err", err)
			nc.Close()
			return
		}
		cfg.OnInbound, cfg.OnOutbound, cfg.OnEnd = rec.Inbound, rec.Outbound, rec.End
	}
	sess := transport.New(cfg)
	if err := sess.Start(ctx, nc); err != nil {
		s.log().Warn("hgframe: start", "err", err)
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = sess.Disconnect(context.Background()) })
	defer stop()
	var out *reactor.OutputStream
	for {
		cmd, err := sess.Recv(ctx)
		if err != nil {
			break
		}
		err = sess.Do(ctx, func(r *reactor.ServerMachine) error {
			if out == nil {
				out = r.NewOutputStream()
			}
			return respond(r, out, cmd)
		})
		if err != nil {
			s.log().Warn("hgframe: respond", "command", cmd.Name, "err", err)
			break
		}
	}
	err := sess.Disconnect(context.Background())
	if err != nil && !errors.Is(err, transport.ErrPeerClosed) {
		s.log().Info("hgframe: connection ended", "remote", nc.RemoteAddr(), "err", err)
	}
}

// respond answers one command on the reactor.
func respond(r *reactor.ServerMachine, out *reactor.OutputStream, cmd reactor.Command) error {
	switch cmd.Name {
	case "echo":
		return r.RespondObjects(out, cmd.RequestID, cmd.Args.Map())
	case "stream":
		n, err := intArg(cmd.Args, "count", 100)
		if err != nil {
			return r.RespondCommandError(out, cmd.RequestID, "stream: %s", []any{[]byte(err.Error())})
		}
		// Zero objects would end in no frame at all: Mercurial's server
		// emits nothing for an empty response, leaving the client waiting.
		if n < 1 || n > maxStreamCount {
			return r.RespondCommandError(out, cmd.RequestID, "stream: count must be between 1 and %s", []any{[]byte(fmt.Sprint(maxStreamCount))})
		}
		objs := make([]any, n)
		for i := range objs {
			objs[i] = map[hgcbor.Bytes]any{"index": i, "line": []byte(fmt.Sprintf("line %d of %d", i+1, n))}
		}
		return r.RespondObjects(out, cmd.RequestID, objs...)
	case "fail":
		msg := []byte("no reason given")
		if v, _ := cmd.Args.Get("message"); v != nil {
			if m, ok := v.([]byte); ok {
				msg = m
			}
		}
		return r.RespondCommandError(out, cmd.RequestID, "fail: %s", []any{msg})
	}
	return r.RespondCommandError(out, cmd.RequestID, "unknown command: %s", []any{[]byte(cmd.Name)})
}

// intArg reads an integer argument, def when absent.
func intArg(args reactor.Args, name string, def int) (int, error) {
	v, ok := args.Get(name)
	if !ok {
		return def, nil
	}
	switch n := v.(type) {
	case int64:
		return int(n), nil
	case []byte:
		var i int
		if _, err := fmt.Sscan(string(n), &i); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("argument %s is not an integer", name)
}
