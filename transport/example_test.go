package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport"
)

// lineMachine is a tiny sans-IO machine: it delivers each received line
// and sends lines the application queues with Say. At the end of its input
// it ends: io.EOF, or io.ErrUnexpectedEOF inside a line.
type lineMachine struct {
	in   []byte // bytes of an incomplete line (copied)
	fed  []byte // fed bytes not yet split (referenced until WantMore)
	out  []byte
	sent bool
	eof  bool
}

func (m *lineMachine) Feed(p []byte) { m.fed = p }
func (m *lineMachine) FeedEOF()      { m.eof = true }

// Say queues a line to send.
func (m *lineMachine) Say(line string) {
	if m.sent {
		m.out, m.sent = m.out[:0], false
	}
	m.out = append(append(m.out, line...), '\n')
}

func (m *lineMachine) Next() action.Action[string] {
	if m.sent {
		m.out, m.sent = m.out[:0], false
	}
	if len(m.out) > 0 {
		m.sent = true
		return action.SendBytes[string](m.out)
	}
	if i := bytes.IndexByte(m.fed, '\n'); i >= 0 {
		line := string(append(m.in, m.fed[:i]...))
		m.in, m.fed = m.in[:0], m.fed[i+1:]
		return action.DeliverValue(line)
	}
	m.in, m.fed = append(m.in, m.fed...), nil
	if m.eof {
		if len(m.in) > 0 {
			return action.Fail[string](io.ErrUnexpectedEOF)
		}
		return action.Fail[string](io.EOF)
	}
	return action.Want[string]()
}

// A session drives a machine over any net.Conn — here one end of an
// in-memory pipe. Do puts application input into the machine; Recv returns
// what it delivers.
func ExampleSession() {
	ctx := context.Background()
	s := transport.New(transport.Config[string, *lineMachine]{
		Name:       "example",
		NewMachine: func() *lineMachine { return &lineMachine{} },
	})
	conn, peer := net.Pipe()
	go func() { // the peer answers every line in capitals
		buf := make([]byte, 64)
		n, _ := peer.Read(buf)
		fmt.Fprintf(peer, "%s", bytes.ToUpper(buf[:n]))
		peer.Close()
	}()

	if err := s.Start(ctx, conn); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.State())
	_ = s.Do(ctx, func(m *lineMachine) error { m.Say("hello"); return nil })
	line, _ := s.Recv(ctx)
	fmt.Println(line)

	// The peer hung up: the session is Disconnecting until Disconnect
	// returns the root cause and makes it Idle again.
	_ = s.WaitState(ctx, transport.RunstateDisconnecting)
	fmt.Println(s.Disconnect(ctx), s.State())
	// Output:
	// running
	// HELLO
	// transport: peer closed the connection: EOF idle
}

// A handshake runs before the session is Running; its failure names the
// phase and leaves the session Idle.
func ExampleConfig_handshake() {
	ctx := context.Background()
	s := transport.New(transport.Config[string, *lineMachine]{
		NewMachine: func() *lineMachine { return &lineMachine{} },
		Handshake: func(ctx context.Context, s *transport.Session[string, *lineMachine]) error {
			greeting, err := s.Recv(ctx)
			if err != nil {
				return err
			}
			if greeting != "HELLO" {
				return fmt.Errorf("unexpected greeting %q", greeting)
			}
			return nil
		},
	})
	conn, peer := net.Pipe()
	go func() {
		fmt.Fprint(peer, "GO AWAY\n")
		peer.Close()
	}()
	err := s.Start(ctx, conn)
	fmt.Println(err)
	fmt.Println(s.State())
	// Output:
	// transport: handshake failed: unexpected greeting "GO AWAY"
	// idle
}

// A Server runs one session per connection.
func ExampleServer() {
	ctx := context.Background()
	srv := &transport.Server[string, *lineMachine]{
		Config: transport.Config[string, *lineMachine]{NewMachine: func() *lineMachine { return &lineMachine{} }},
		Handle: func(ctx context.Context, s *transport.Session[string, *lineMachine]) {
			for {
				line, err := s.Recv(ctx)
				if err != nil {
					return
				}
				_ = s.Do(ctx, func(m *lineMachine) error { m.Say("echo " + line); return nil })
			}
		},
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()

	c, _ := net.Dial("tcp", ln.Addr().String())
	fmt.Fprint(c, "one\n")
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	fmt.Print(string(buf[:n]))
	c.Close()

	_ = srv.Shutdown(ctx)
	fmt.Println(<-done)
	// Output:
	// echo one
	// transport: server closed
}

// A Cork holds small output back until its Uncork, so that messages
// produced by several calls leave in one write: here the peer gets both
// lines in a single read.
func ExampleSession_Cork() {
	ctx := context.Background()
	s := transport.New(transport.Config[string, *lineMachine]{
		NewMachine: func() *lineMachine { return &lineMachine{} },
	})
	conn, peer := net.Pipe()
	if err := s.Start(ctx, conn); err != nil {
		fmt.Println(err)
		return
	}
	s.Cork()
	_ = s.Do(ctx, func(m *lineMachine) error { m.Say("one"); return nil })
	_ = s.Do(ctx, func(m *lineMachine) error { m.Say("two"); return nil })
	s.Uncork() // both lines go out now, in one write

	buf := make([]byte, 64)
	n, _ := peer.Read(buf)
	fmt.Printf("%q\n", buf[:n])
	peer.Close()
	_ = s.Disconnect(ctx)
	// Output:
	// "one\ntwo\n"
}
