package harness

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/net/websocket"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
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
	eof    bool
}

// Queue appends wire bytes to send. They are copied.
func (m *frameMachine) Queue(wire []byte) { m.out = append(m.out, wire...) }

func (m *frameMachine) Feed(p []byte) { m.dec.Feed(p) }
func (m *frameMachine) FeedEOF()      { m.dec.FeedEOF(); m.eof = true }

func (m *frameMachine) Next() action.Action[frame.Frame] {
	if m.sent {
		m.out, m.sent = m.out[:0], false
	}
	for {
		f, err := m.dec.NextFrame()
		if err != nil {
			return action.Fail[frame.Frame](err)
		}
		if f == nil {
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
	if m.eof {
		return action.Fail[frame.Frame](io.EOF) // a clean end
	}
	return action.Want[frame.Frame]()
}

type frameSession = transport.Session[frame.Frame, *frameMachine]

func newFrameSession(m func() *frameMachine) *frameSession {
	return transport.New(transport.Config[frame.Frame, *frameMachine]{NewMachine: m})
}

// transportKind is one transport family: our endpoint (listener and
// dialer) and the raw socket the same work is compared with.
type transportKind struct {
	name string
	ours func(dir string) (net.Listener, transport.Dialer, error)
	raw  func(dir string) (net.Listener, func() (net.Conn, error), error)
}

var transportKinds = []transportKind{
	{
		name: "unix",
		ours: func(dir string) (net.Listener, transport.Dialer, error) {
			// Neither side takes descriptors, as in the raw peer, whose
			// reads are plain read(2) calls too.
			ep := unix.Endpoint{Path: filepath.Join(dir, "t.sock"), ListenNoFDs: true}
			ln, err := ep.Listen(context.Background())
			return ln, ep, err
		},
		raw: func(dir string) (net.Listener, func() (net.Conn, error), error) {
			path := filepath.Join(dir, "raw.sock")
			ln, err := net.Listen("unix", path)
			return ln, func() (net.Conn, error) { return net.Dial("unix", path) }, err
		},
	},
	{
		name: "tcp",
		ours: func(string) (net.Listener, transport.Dialer, error) {
			ln, err := tcp.Endpoint{Address: "127.0.0.1:0"}.Listen(context.Background())
			if err != nil {
				return nil, nil, err
			}
			return ln, tcp.Endpoint{Address: ln.Addr().String()}, nil
		},
		raw: func(string) (net.Listener, func() (net.Conn, error), error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			return ln, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }, nil
		},
	},
	{
		name: "ws",
		ours: func(string) (net.Listener, transport.Dialer, error) {
			ln, err := ws.Endpoint{URL: "ws://127.0.0.1:0/bench"}.Listen(context.Background())
			if err != nil {
				return nil, nil, err
			}
			return ln, ws.Endpoint{URL: ln.(*ws.Listener).URL()}, nil
		},
		raw: rawWebSocket,
	},
}

// rawWebSocket serves plain golang.org/x/net/websocket on loopback: binary
// frames, one Write per frame, the handler's connection handed to Accept.
func rawWebSocket(string) (net.Listener, func() (net.Conn, error), error) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	wl := &wsListener{Listener: tl, conns: make(chan net.Conn)}
	srv := &http.Server{Handler: websocket.Server{Handler: func(c *websocket.Conn) {
		c.PayloadType = websocket.BinaryFrame
		done := make(chan struct{})
		select {
		case wl.conns <- &closeNotifyConn{Conn: c, done: done}:
			<-done // the handler's return closes the connection
		case <-wl.closed():
		}
	}}}
	wl.srv = srv
	go srv.Serve(tl)
	url := "ws://" + tl.Addr().String() + "/bench"
	dial := func() (net.Conn, error) {
		c, err := websocket.Dial(url, "binary", "http://"+tl.Addr().String())
		if err != nil {
			return nil, err
		}
		c.PayloadType = websocket.BinaryFrame
		return c, nil
	}
	return wl, dial, nil
}

type wsListener struct {
	net.Listener
	srv   *http.Server
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *wsListener) closed() chan struct{} {
	l.once.Do(func() { l.done = make(chan struct{}) })
	return l.done
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed():
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out stay open (as a
// net.Listener's do) until closed.
func (l *wsListener) Close() error {
	select {
	case <-l.closed():
	default:
		close(l.closed())
	}
	return l.Listener.Close()
}

type closeNotifyConn struct {
	net.Conn
	done chan struct{}
	once sync.Once
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// Peer names used by Targets.
const (
	peerCoderWS   = "coder/websocket"
	peerGorillaWS = "gorilla/websocket"
)

// TransportComparisons measures transport.Session over the unix, tcp and ws
// endpoints against a raw socket doing the same work (for ws: plain
// golang.org/x/net/websocket, binary frames), and for ws also against
// github.com/coder/websocket and github.com/gorilla/websocket (bench/peers,
// in their own process, server and client as ours are in this one): bulk
// 32 KiB frames one way, and 64-byte frame round trips (echoed by the
// server).
func TransportComparisons() []Comparison {
	var cs []Comparison
	for _, k := range transportKinds {
		bulk := []Side{{rawName(k.name), goSide(func(b *testing.B) { benchRawBulk(b, k) })}}
		rt := []Side{{rawName(k.name), goSide(func(b *testing.B) { benchRawRoundTrip(b, k) })}}
		if k.name == "ws" {
			for _, lib := range []struct{ name, arg string }{{peerCoderWS, "coder"}, {peerGorillaWS, "gorilla"}} {
				bulk = append(bulk, Side{lib.name, func(ctx context.Context, cfg Config) (Sample, error) {
					return runPeer(ctx, cfg, "ws", "-lib", lib.arg, "-mode", "bulk")
				}})
				rt = append(rt, Side{lib.name, func(ctx context.Context, cfg Config) (Sample, error) {
					return runPeer(ctx, cfg, "ws", "-lib", lib.arg, "-mode", "rt")
				}})
			}
		}
		cs = append(cs, Comparison{
			Group: "transport", Name: k.name + ": bulk 32 KiB frames",
			Ours:  Side{"transport.Session", goSide(func(b *testing.B) { benchSessionBulk(b, k) })},
			Peers: bulk,
		}, Comparison{
			Group: "transport", Name: k.name + ": 64 B frame round trip",
			Ours:  Side{"transport.Session", goSide(func(b *testing.B) { benchSessionRoundTrip(b, k) })},
			Peers: rt,
		})
	}
	return cs
}

// bulkFrames is how many frames one bulk op sends (2 MiB).
const bulkFrames = 64

// sessionPair connects a client session to a server session over k.
func sessionPair(b *testing.B, k transportKind, client, server func() *frameMachine) (*frameSession, *frameSession) {
	dir := b.TempDir()
	ln, d, err := k.ours(dir)
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
	ln, dial, err := k.raw(b.TempDir())
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

func rawName(kind string) string {
	if kind == "ws" {
		return "raw x/net/websocket"
	}
	return "raw " + kind + " socket"
}
