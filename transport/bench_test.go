package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// Benchmarks put a Session beside a raw connection of the same kind doing
// the same work in the same run; the ratio of their MB/s (or ns/op) is the
// figure. On a shared machine, interleave runs and take the median of the
// per-run ratios:
//
//	for i in 1 2 3 4 5; do
//		go test -run='^$' -bench=Bulk -benchtime=3000x ./transport/
//		go test -run='^$' -bench=RoundTrip -benchtime=20000x ./transport/
//	done
//
// On a loaded machine runs of 3000x vary by 2× or more; longer runs
// (-benchtime=20000x for Bulk, 50000x for RoundTrip) give steadier ratios.
//
// The raw side does the same framing work as the session: its reader
// splits the stream into length-prefixed messages with the same lenmsg
// parser, its echo server parses and echoes whole messages.
//
// "raw" for ws is golang.org/x/net/websocket on both ends; "session" is a
// Session over this project's ws.Conn.

// connPair makes a connected (client, server) pair.
type connPair func(b *testing.B) (net.Conn, net.Conn)

func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

func listenPair(b *testing.B, ln net.Listener, dial func() (net.Conn, error)) (net.Conn, net.Conn) {
	b.Helper()
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	s := <-ch
	if s == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func unixPair(raw bool) connPair {
	return func(b *testing.B) (net.Conn, net.Conn) {
		dir, err := os.MkdirTemp("", "wrb")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "s")
		if raw {
			ln, err := net.Listen("unix", path)
			if err != nil {
				b.Fatal(err)
			}
			return listenPair(b, ln, func() (net.Conn, error) { return net.Dial("unix", path) })
		}
		ep := unix.Endpoint{Path: path}
		ln, err := ep.Listen(benchCtx(b))
		if err != nil {
			b.Fatal(err)
		}
		return listenPair(b, ln, func() (net.Conn, error) { return ep.Dial(benchCtx(b)) })
	}
}

func tcpPair(raw bool) connPair {
	return func(b *testing.B) (net.Conn, net.Conn) {
		if raw {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			return listenPair(b, ln, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) })
		}
		ln, err := tcp.Endpoint{Address: "127.0.0.1:0"}.Listen(benchCtx(b))
		if err != nil {
			b.Fatal(err)
		}
		return listenPair(b, ln, func() (net.Conn, error) {
			return tcp.Endpoint{Address: ln.Addr().String()}.Dial(benchCtx(b))
		})
	}
}

func wsPair(raw bool) connPair {
	return func(b *testing.B) (net.Conn, net.Conn) {
		if !raw {
			l, err := ws.Endpoint{URL: "ws://127.0.0.1:0/"}.ListenWS(benchCtx(b))
			if err != nil {
				b.Fatal(err)
			}
			return listenPair(b, l, func() (net.Conn, error) { return ws.Endpoint{URL: l.URL()}.Dial(benchCtx(b)) })
		}
		// x/net/websocket on both ends, binary frames.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		conns := make(chan *websocket.Conn, 1)
		release := make(chan struct{})
		srv := &http.Server{Handler: websocket.Handler(func(c *websocket.Conn) {
			c.PayloadType = websocket.BinaryFrame
			conns <- c
			<-release
		})}
		go srv.Serve(ln)
		url := "ws://" + ln.Addr().String() + "/"
		c, err := websocket.Dial(url, "binary", "http://"+ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.PayloadType = websocket.BinaryFrame
		s := <-conns
		b.Cleanup(func() { c.Close(); close(release); srv.Close() })
		return c, s
	}
}

var benchTransports = []struct {
	name string
	pair func(raw bool) connPair
}{
	{"unix", unixPair},
	{"tcp", tcpPair},
	{"ws", wsPair},
}

const bulkMsg = 64 << 10

// BenchmarkBulk sends b.N messages of 64 KiB one way.
func BenchmarkBulk(b *testing.B) {
	payload := make([]byte, bulkMsg-4)
	wire := lenmsg.Append(nil, payload)
	for _, tr := range benchTransports {
		b.Run(tr.name+"/raw", func(b *testing.B) {
			c, s := tr.pair(true)(b)
			done := make(chan int64, 1)
			go func() {
				// The same framing work as the session's machine: split
				// the stream into length-prefixed messages and count them.
				var sink lenmsg.Machine
				sink.Discard = true
				buf := make([]byte, transport.DefaultReadBufferSize)
				for {
					k, err := s.Read(buf)
					sink.Feed(buf[:k])
					for sink.Next().Kind != action.KindWantMore {
					}
					if err != nil {
						done <- int64(sink.Messages)
						return
					}
				}
			}()
			b.SetBytes(bulkMsg)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(wire); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			if n := <-done; n != int64(b.N) {
				b.Fatalf("received %d messages, want %d", n, b.N)
			}
		})
		b.Run(tr.name+"/session", func(b *testing.B) {
			ctx := benchCtx(b)
			c, s := tr.pair(false)(b)
			sink := &lenmsg.Machine{Discard: true}
			srv := transport.New(transport.Config[string, *lenmsg.Machine]{Logger: quiet, NewMachine: func() *lenmsg.Machine { return sink }})
			cli := transport.New(transport.Config[string, *lenmsg.Machine]{Logger: quiet, NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} }})
			if err := srv.Start(ctx, s); err != nil {
				b.Fatal(err)
			}
			if err := cli.Start(ctx, c); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bulkMsg)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := cli.Do(ctx, func(m *lenmsg.Machine) error { return m.SendRef(payload) }); err != nil {
					b.Fatal(err)
				}
			}
			if err := cli.Disconnect(ctx); err != nil {
				b.Fatal(err)
			}
			if err := srv.WaitState(ctx, transport.RunstateDisconnecting); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := srv.Disconnect(ctx); !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			if sink.Messages != b.N {
				b.Fatalf("received %d messages, want %d", sink.Messages, b.N)
			}
		})
	}
}

// BenchmarkRoundTrip sends a 16-byte message and waits for its echo.
func BenchmarkRoundTrip(b *testing.B) {
	payload := []byte("0123456789abcdef")
	wire := lenmsg.Append(nil, payload)
	for _, tr := range benchTransports {
		b.Run(tr.name+"/raw", func(b *testing.B) {
			c, s := tr.pair(true)(b)
			go func() {
				// The same framing work as the session's echo machine:
				// parse whole messages and write each one back.
				echo := lenmsg.Machine{Echo: true, Discard: true}
				buf := make([]byte, transport.DefaultReadBufferSize)
				for {
					n, err := s.Read(buf)
					echo.Feed(buf[:n])
					for a := echo.Next(); a.Kind == action.KindSend; a = echo.Next() {
						if _, err := s.Write(a.Bytes); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			reply := make([]byte, len(wire))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(wire); err != nil {
					b.Fatal(err)
				}
				// Header, then the payload it announces.
				if _, err := io.ReadFull(c, reply[:4]); err != nil {
					b.Fatal(err)
				}
				n := binary.BigEndian.Uint32(reply)
				if _, err := io.ReadFull(c, reply[4:4+n]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tr.name+"/session", func(b *testing.B) {
			ctx := benchCtx(b)
			c, s := tr.pair(false)(b)
			srv := transport.New(transport.Config[string, *lenmsg.Machine]{Logger: quiet, NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{Echo: true, Discard: true} }})
			cli := transport.New(transport.Config[string, *lenmsg.Machine]{Logger: quiet, NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} }})
			if err := srv.Start(ctx, s); err != nil {
				b.Fatal(err)
			}
			if err := cli.Start(ctx, c); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := cli.Do(ctx, func(m *lenmsg.Machine) error { return m.Send(payload) }); err != nil {
					b.Fatal(err)
				}
				if _, err := cli.Recv(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = cli.Disconnect(ctx)
			_ = srv.Disconnect(ctx)
		})
	}
}
