package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// frameMachine is the frame protocol's byte layer as a machine a Session
// drives: it decodes frames, echoes them (a server) or counts them and
// delivers one marker per Every frames (a bulk receiver), and sends frames
// queued with Queue.
type frameMachine struct {
	dec    framing.Decoder
	echo   bool
	every  int // deliver one frame per every frames received; 0: each one
	frames int
	out    []byte
	sent   bool
}

// Queue appends wire bytes to send. They are copied.
func (m *frameMachine) Queue(wire []byte) { m.out = append(m.out, wire...) }

func (m *frameMachine) Feed(p []byte) { m.dec.Feed(p) }
func (m *frameMachine) FeedEOF()      { m.dec.FeedEOF() }

func (m *frameMachine) Next() action.Action[frame.Frame] {
	if m.sent {
		m.out, m.sent = m.out[:0], false
	}
	for {
		f, ok, err := m.dec.NextFrame()
		if err != nil {
			return action.Fail[frame.Frame](err)
		}
		if !ok {
			break
		}
		m.frames++
		switch {
		case m.echo:
			m.out = f.Append(m.out)
		case m.every == 0 || m.frames%m.every == 0:
			// Delivered values outlive this call (they wait for Recv):
			// they must not alias the decoder's input.
			return action.DeliverValue(f.Clone())
		}
	}
	if len(m.out) > 0 {
		m.sent = true
		return action.SendBytes[frame.Frame](m.out)
	}
	return action.Want[frame.Frame]()
}

type frameSession = transport.Session[frame.Frame, *frameMachine]

func newFrameSession(m func() *frameMachine) *frameSession {
	return transport.New(transport.Config[frame.Frame, *frameMachine]{NewMachine: m})
}

// transportKind is one transport family: how our endpoint and a raw socket
// reach a listener.
type transportKind struct {
	name   string
	listen func(dir string) (net.Listener, transport.Dialer, func() (net.Conn, error), error)
}

var transportKinds = []transportKind{
	{"unix", func(dir string) (net.Listener, transport.Dialer, func() (net.Conn, error), error) {
		path := filepath.Join(dir, "t.sock")
		ep := unix.Endpoint{Path: path}
		ln, err := ep.Listen(context.Background())
		return ln, ep, func() (net.Conn, error) { return net.Dial("unix", path) }, err
	}},
	{"tcp", func(string) (net.Listener, transport.Dialer, func() (net.Conn, error), error) {
		ln, err := tcp.Endpoint{Address: "127.0.0.1:0"}.Listen(context.Background())
		if err != nil {
			return nil, nil, nil, err
		}
		addr := ln.Addr().String()
		return ln, tcp.Endpoint{Address: addr}, func() (net.Conn, error) { return net.Dial("tcp", addr) }, nil
	}},
}

// TransportComparisons measures transport.Session over the unix and tcp
// endpoints against a raw socket doing the same work: bulk 32 KiB frames
// one way, and 64-byte frame round trips (echoed by the server).
func TransportComparisons() []Comparison {
	var cs []Comparison
	for _, k := range transportKinds {
		cs = append(cs, Comparison{
			Group: "transport", Name: k.name + ": bulk 32 KiB frames",
			Ours:   Side{"transport.Session", goSide(func(b *testing.B) { benchSessionBulk(b, k) })},
			Peer:   Side{"raw " + k.name + " socket", goSide(func(b *testing.B) { benchRawBulk(b, k) })},
			Target: "≥ 0.85", MinRatio: 0.85,
		}, Comparison{
			Group: "transport", Name: k.name + ": 64 B frame round trip",
			Ours:   Side{"transport.Session", goSide(func(b *testing.B) { benchSessionRoundTrip(b, k) })},
			Peer:   Side{"raw " + k.name + " socket", goSide(func(b *testing.B) { benchRawRoundTrip(b, k) })},
			Target: "≥ 0.85", MinRatio: 0.85,
		})
	}
	return cs
}

// bulkFrames is how many frames one bulk op sends (2 MiB).
const bulkFrames = 64

// sessionPair connects a client session to a server session over k.
func sessionPair(b *testing.B, k transportKind, client, server func() *frameMachine) (*frameSession, *frameSession) {
	dir := b.TempDir()
	ln, d, _, err := k.listen(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	srv := newFrameSession(server)
	accepted := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		if err == nil {
			err = srv.Start(ctx, nc)
		}
		accepted <- err
	}()
	cl := newFrameSession(client)
	if err := cl.Connect(ctx, d); err != nil {
		b.Fatal(err)
	}
	if err := <-accepted; err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cl.Disconnect(ctx)
		srv.Disconnect(ctx)
	})
	return cl, srv
}

func benchSessionBulk(b *testing.B, k transportKind) {
	f := benchFrame(payloadOf(32 << 10))
	wire := f.Append(nil)
	cl, srv := sessionPair(b, k, func() *frameMachine { return &frameMachine{} },
		func() *frameMachine { return &frameMachine{every: bulkFrames} })
	ctx := context.Background()
	b.SetBytes(int64(bulkFrames * len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		for range bulkFrames {
			if err := cl.Do(ctx, func(m *frameMachine) error { m.Queue(wire); return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := srv.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// rawPair accepts one raw connection on k and dials it.
func rawPair(b *testing.B, k transportKind) (client, server net.Conn) {
	ln, _, dial, err := k.listen(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = dial()
	if err != nil {
		b.Fatal(err)
	}
	if server = <-accepted; server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// readFrame reads one frame the plain way: header, then payload, into buf.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:frame.HeaderSize]); err != nil {
		return nil, err
	}
	h, err := frame.ParseHeader(buf[:frame.HeaderSize])
	if err != nil {
		return nil, err
	}
	n := frame.HeaderSize + int(h.Length)
	if n > len(buf) {
		return nil, errors.New("frame larger than the buffer")
	}
	if _, err := io.ReadFull(r, buf[frame.HeaderSize:n]); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func benchRawBulk(b *testing.B, k transportKind) {
	f := benchFrame(payloadOf(32 << 10))
	wire := f.Append(nil)
	client, server := rawPair(b, k)
	done := make(chan error)
	go func() {
		r := bufio.NewReaderSize(server, 64<<10)
		buf := make([]byte, 64<<10)
		for {
			for range bulkFrames {
				if _, err := readFrame(r, buf); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}
	}()
	b.SetBytes(int64(bulkFrames * len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		for range bulkFrames {
			if _, err := client.Write(wire); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	client.Close()
	<-done // the reader's end-of-stream error
}

func benchSessionRoundTrip(b *testing.B, k transportKind) {
	f := benchFrame(payloadOf(64))
	wire := f.Append(nil)
	cl, _ := sessionPair(b, k, func() *frameMachine { return &frameMachine{} },
		func() *frameMachine { return &frameMachine{echo: true} })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := cl.Do(ctx, func(m *frameMachine) error { m.Queue(wire); return nil }); err != nil {
			b.Fatal(err)
		}
		got, err := cl.Recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Payload) != len(f.Payload) {
			b.Fatalf("echoed %v", got)
		}
	}
}

func benchRawRoundTrip(b *testing.B, k transportKind) {
	f := benchFrame(payloadOf(64))
	wire := f.Append(nil)
	client, server := rawPair(b, k)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(server)
		buf := make([]byte, 4096)
		for {
			fr, err := readFrame(r, buf)
			if err != nil {
				return
			}
			if _, err := server.Write(fr); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(client)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(wire); err != nil {
			b.Fatal(err)
		}
		got, err := readFrame(r, buf)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != len(wire) {
			b.Fatalf("echoed %d bytes", len(got))
		}
	}
	client.Close()
	<-done
}
