// Package responder is the report's instant-reply QMP server: it greets,
// answers every command at once with a canned reply carrying the command's
// id, and flushes when its input drains, so a client's cost per command is
// what a measurement against it shows. It uses none of wirereactor's
// packages: the figures of a client under test do not move when the
// library's server side changes.
//
// It answers qmp_capabilities ({}), query-status (running, as an idle QEMU
// does), query-name ({"name": "bench"}, as QEMU started with -name bench
// does) and every other command with CommandNotFound.
package responder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"sync"
)

// Greeting is the first line the responder sends.
const Greeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "responder"}, "capabilities": []}}` + "\r\n"

// MaxLine bounds one command; a longer one ends the connection.
const MaxLine = 64 << 10

// Server answers QMP connections until closed.
type Server struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Serve accepts connections on ln and answers each on its own goroutine
// until ln fails or the server is closed; it returns after every
// connection's goroutine has ended, with ln's error (net.ErrClosed after
// Close).
func (s *Server) Serve(ln net.Listener) error {
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.closeConns()
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if s.conns == nil {
			s.conns = map[net.Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		})
	}
}

// Close closes every connection; Serve returns once its listener is
// closed too (the caller owns it).
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeConns()
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// command is the part of a command line the responder reads.
type command struct {
	Execute string          `json:"execute"`
	ID      json.RawMessage `json:"id"`
}

func serveConn(c net.Conn) error {
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	if _, err := w.WriteString(Greeting); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var sc Scanner
	for {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		cmd, err := sc.Push(b)
		if err != nil {
			return err
		}
		if cmd != nil {
			w.Write(Reply(cmd))
		}
		// Coalesce: one write for every command already read.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// Scanner splits a stream of JSON objects, as QEMU reads them: with or
// without newlines between them.
type Scanner struct {
	buf      []byte
	depth    int
	inString bool
	escaped  bool
}

// ErrTooLong is returned for a command longer than MaxLine.
var ErrTooLong = errors.New("responder: command longer than 64 KiB")

// Push adds one byte; it returns a whole command when b ends one (valid
// until the next call).
func (s *Scanner) Push(b byte) ([]byte, error) {
	if s.depth == 0 {
		s.buf = s.buf[:0]
		if b != '{' {
			return nil, nil // whitespace (or junk) between commands
		}
	}
	if len(s.buf) == MaxLine {
		return nil, ErrTooLong
	}
	s.buf = append(s.buf, b)
	switch {
	case s.inString:
		switch {
		case s.escaped:
			s.escaped = false
		case b == '\\':
			s.escaped = true
		case b == '"':
			s.inString = false
		}
	case b == '"':
		s.inString = true
	case b == '{' || b == '[':
		s.depth++
	case b == '}' || b == ']':
		s.depth--
		if s.depth == 0 {
			return s.buf, nil
		}
	}
	return nil, nil
}

// Reply returns the reply line to one command.
func Reply(line []byte) []byte {
	var cmd command
	if err := json.Unmarshal(line, &cmd); err != nil {
		return []byte(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}` + "\r\n")
	}
	var out []byte
	switch cmd.Execute {
	case "qmp_capabilities":
		out = append(out, `{"return": {}`...)
	case "query-status":
		out = append(out, `{"return": {"status": "running", "singlestep": false, "running": true}`...)
	case "query-name":
		out = append(out, `{"return": {"name": "bench"}`...)
	default:
		b, _ := json.Marshal("The command " + cmd.Execute + " has not been found")
		out = append(append(append(out, `{"error": {"class": "CommandNotFound", "desc": `...), b...), '}')
	}
	if len(cmd.ID) > 0 {
		// Compacted: an id written over several lines stays on one.
		var id bytes.Buffer
		json.Compact(&id, cmd.ID)
		out = append(append(out, `, "id": `...), id.Bytes()...)
	}
	return append(out, "}\r\n"...)
}
