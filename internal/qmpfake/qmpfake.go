// Package qmpfake is a minimal in-process QMP server built on
// qmp.ServerMachine, one goroutine per connection. It answers query-status
// as an idle QEMU does and every other command with an empty return.
//
// It is the benchmarks' and examples' stand-in for qmp/qmptest until that
// package lands; it has no scripting and no fault injection.
package qmpfake

import (
	"errors"
	"net"
	"sync"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/qmp"
)

// StatusReply is what query-status returns: a running VM, as QEMU 7.2 says it.
const StatusReply = `{"status": "running", "singlestep": false, "running": true}`

// Server serves QMP on a listener until Close.
type Server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// Serve starts serving ln in the background. Close stops it and joins every
// goroutine it started.
func Serve(ln net.Listener) *Server {
	s := &Server{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve runs one connection: read, feed, answer, write — all on this
// goroutine, so replies go out in order.
func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	m := qmp.NewServerMachine(qmp.ServerConfig{})
	var out []byte
	// A small buffer: an idle connection costs this plus the goroutine.
	buf := make([]byte, 2048)
	drain := func() bool {
		for {
			a := m.Next()
			switch a.Kind {
			case action.Send:
				out = append(out, a.Bytes...)
			case action.Deliver:
				result := []byte(nil)
				if a.Value.Name == "query-status" {
					result = []byte(StatusReply)
				}
				if err := m.Return(a.Value.ID, result); err != nil {
					return false
				}
			case action.WantMore:
				if len(out) > 0 {
					_, err := c.Write(out)
					out = out[:0]
					return err == nil
				}
				return true
			default:
				return false
			}
		}
	}
	if !drain() {
		return
	}
	for {
		n, err := c.Read(buf)
		if n > 0 {
			m.Feed(buf[:n])
			if !drain() {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
