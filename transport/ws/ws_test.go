package ws

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/net/websocket"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
)

// listen starts a listener on a free port and returns it with a client
// endpoint for it.
func listen(t *testing.T, server Endpoint) (*Listener, Endpoint) {
	t.Helper()
	l, err := server.ListenWS(transporttest.Context(t))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	client := server
	client.URL = l.URL()
	return l, client
}

// pair returns a connected client and server *Conn.
func pair(t *testing.T, server Endpoint) (client, srv *Conn) {
	t.Helper()
	l, ce := listen(t, server)
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	client, err := ce.DialWS(transporttest.Context(t))
	require.NoError(t, err)
	s := (<-ch).(*Conn)
	t.Cleanup(func() { client.nc.Close(); s.nc.Close() })
	return client, s
}

func TestSessionOverWebSocket(t *testing.T) {
	serverTLS, clientTLS, err := testcert.New()
	require.NoError(t, err)
	tests := []struct {
		name           string
		server, client Endpoint
	}{
		{"ws", Endpoint{URL: "ws://127.0.0.1:0/qmp"}, Endpoint{}},
		{"ws small frames", Endpoint{URL: "ws://127.0.0.1:0/", MaxFrameSize: 100}, Endpoint{MaxFrameSize: 100}},
		{"wss", Endpoint{URL: "wss://127.0.0.1:0/qmp", TLS: serverTLS}, Endpoint{TLS: clientTLS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			ctx := transporttest.Context(t)
			srv, cli := transporttest.NewSession(true), transporttest.NewSession(false)
			require.NoError(t, srv.StartServer(ctx, tt.server))
			// The listener is inside the session; find its URL by
			// listening ourselves instead.
			require.NoError(t, srv.Disconnect(ctx))

			l, err := tt.server.ListenWS(ctx)
			require.NoError(t, err)
			ce := tt.client
			ce.URL = l.URL()
			transporttest.Connect(t, ctx, srv, cli, l, ce)
			transporttest.RequireEchoThenCleanClose(t, ctx, srv, cli)
		})
	}
}

// rawClient dials l with x/net/websocket.
func rawClient(t *testing.T, url, origin string, protocols ...string) (*websocket.Conn, error) {
	cfg, err := websocket.NewConfig(url, origin)
	require.NoError(t, err)
	cfg.Protocol = protocols
	return cfg.DialContext(transporttest.Context(t))
}

func TestServerAgainstXNetClient(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx := transporttest.Context(t)
	l, _ := listen(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	origin := "http://" + l.Addr().String()
	srv := transporttest.NewSession(false)
	require.NoError(t, srv.StartServer(ctx, transport.ListenFunc(func(context.Context) (net.Listener, error) { return l, nil })))
	acc := make(chan error, 1)
	go func() { acc <- srv.Accept(ctx) }()
	raw, err := rawClient(t, l.URL(), origin, "binary")
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, <-acc)
	require.Equal(t, []string{"binary"}, raw.Config().Protocol)

	// Messages split across frames and several per frame.
	raw.PayloadType = websocket.BinaryFrame
	wire := lenmsg.Append(nil, []byte("first"))
	wire = lenmsg.Append(wire, []byte("second"))
	wire = lenmsg.Append(wire, []byte("third"))
	for _, chunk := range [][]byte{wire[:3], wire[3:11], wire[11:]} {
		_, err := raw.Write(chunk)
		require.NoError(t, err)
	}
	for _, want := range []string{"first", "second", "third"} {
		got, err := srv.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}

	// A text frame is a protocol error, answered with close 1003.
	require.NoError(t, websocket.Message.Send(raw, "text"))
	require.NoError(t, srv.WaitState(ctx, transport.RunstateDisconnecting))
	err = srv.Disconnect(ctx)
	require.ErrorIs(t, err, ErrTextFrame)
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, uint16(CloseUnsupportedData), pe.Code)
	var buf []byte
	require.Error(t, websocket.Message.Receive(raw, &buf), "the server closed")
}

func TestUpgradeChecks(t *testing.T) {
	tests := []struct {
		name      string
		server    Endpoint
		origin    string // "" means same origin
		protocols []string
		ok        bool
		protocol  string
	}{
		{"same origin", Endpoint{}, "", []string{"binary"}, true, "binary"},
		{"no subprotocol offered", Endpoint{}, "", nil, true, ""},
		{"binary among others", Endpoint{}, "", []string{"text", "binary"}, true, "binary"},
		{"no binary", Endpoint{}, "", []string{"text"}, false, ""},
		{"cross origin", Endpoint{}, "http://evil.example", []string{"binary"}, false, ""},
		{"allowed origin", Endpoint{AllowedOrigins: []string{"http://good.example"}}, "http://good.example", []string{"binary"}, true, "binary"},
		{"not in allow-list", Endpoint{AllowedOrigins: []string{"http://good.example"}}, "http://evil.example", []string{"binary"}, false, ""},
		{"any origin", Endpoint{AllowedOrigins: []string{"*"}}, "http://evil.example", []string{"binary"}, true, "binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			se := tt.server
			se.URL = "ws://127.0.0.1:0/"
			l, _ := listen(t, se)
			accepted := make(chan *Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c.(*Conn)
				}
			}()
			origin := tt.origin
			if origin == "" {
				origin = "http://" + l.Addr().String()
			}
			raw, err := rawClient(t, l.URL(), origin, tt.protocols...)
			if !tt.ok {
				require.Error(t, err)
				l.Close()
				return
			}
			require.NoError(t, err)
			c := <-accepted
			require.Equal(t, tt.protocol, c.Subprotocol())
			raw.Close()
			c.Close()
		})
	}
}

func TestClientSubprotocol(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx := transporttest.Context(t)
	c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	require.Equal(t, Subprotocol, c.Subprotocol())
	require.Equal(t, Subprotocol, s.Subprotocol())
	_ = ctx
	c.Close()
	s.Close()
}

// acceptKey computes Sec-WebSocket-Accept.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// A server may send frames in the same segment as its 101 response; none
// of those bytes may be lost.
func TestClientKeepsBytesAfterHandshake(t *testing.T) {
	transporttest.LeakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n" +
			"Sec-WebSocket-Protocol: binary\r\n\r\n"
		frame := append([]byte{0x82, 5}, "hello"...)
		_, _ = c.Write(append([]byte(resp), frame...))
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := Endpoint{URL: "ws://" + ln.Addr().String() + "/"}.DialWS(transporttest.Context(t))
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))
	c.nc.Close()
	<-done
}

// writeRaw writes one client frame (masked) straight to the socket.
func writeRaw(t *testing.T, c *Conn, b0 byte, payload []byte, length uint64) {
	t.Helper()
	h := []byte{b0}
	switch {
	case length < 126:
		h = append(h, 0x80|byte(length))
	case length <= 0xffff:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(length))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, length)
	}
	mask := [4]byte{1, 2, 3, 4}
	h = append(h, mask[:]...)
	p := append([]byte(nil), payload...)
	maskBytes(mask, 0, p)
	_, err := c.nc.Write(append(h, p...))
	require.NoError(t, err)
}

func TestProtocolErrors(t *testing.T) {
	tests := []struct {
		name    string
		b0      byte
		payload string
		length  uint64
		code    uint16
		msg     string
	}{
		{"text", 0x81, "hi", 2, CloseUnsupportedData, "text frame"},
		{"too big", 0x82, "", 1 << 30, CloseMessageTooBig, "ws: frame too big: frame payload bytes: 1073741824 exceeds the limit of 1048576"},
		{"reserved bits", 0xC2, "x", 1, CloseProtocolError, "reserved bits"},
		{"stray continuation", 0x80, "x", 1, CloseProtocolError, "continuation frame outside"},
		{"unknown opcode", 0x83, "x", 1, CloseProtocolError, "unknown opcode"},
		{"fragmented ping", 0x09, "x", 1, CloseProtocolError, "control frame"},
		{"reserved control opcode", 0x8B, "x", 1, CloseProtocolError, "unknown opcode 0xb"},
		{"length with its top bit set", 0x82, "", 1 << 63, CloseProtocolError, "most significant bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
			writeRaw(t, c, tt.b0, []byte(tt.payload), tt.length)
			// A frame silently ignored would leave Read waiting forever.
			require.NoError(t, s.SetReadDeadline(time.Now().Add(5*time.Second)))
			_, err := s.Read(make([]byte, 10))
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.code, pe.Code)
			require.Contains(t, err.Error(), tt.msg)
			require.ErrorIs(t, err, ErrProtocol)
			require.Equal(t, tt.code == CloseMessageTooBig, errors.Is(err, action.ErrLimit))
			// The error is sticky and the client got a close frame.
			_, err2 := s.Read(make([]byte, 10))
			require.Equal(t, err, err2)
			_, err = c.Read(make([]byte, 10))
			var ce *CloseError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.code, ce.Code)
		})
	}
}

func TestPingAnsweredByReader(t *testing.T) {
	transporttest.LeakCheck(t)
	c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	go func() { _, _ = s.Read(make([]byte, 10)) }()
	writeRaw(t, c, 0x89, []byte("are you there"), 13)
	hdr := make([]byte, 2+13)
	_, err := io.ReadFull(c.nc, hdr)
	require.NoError(t, err)
	require.Equal(t, byte(0x8A), hdr[0], "a pong")
	require.Equal(t, byte(13), hdr[1], "unmasked, same length")
	require.Equal(t, "are you there", string(hdr[2:]))
	s.nc.Close()
}

func TestCloseNotBlockedByWrite(t *testing.T) {
	transporttest.LeakCheck(t)
	c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	_ = c // never reads
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(make([]byte, 64<<20))
		werr <- err
	}()
	// Let the write fill the socket buffers and block.
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the blocked Write")
	}
	require.Error(t, <-werr)
}

func TestCloseHandshake(t *testing.T) {
	transporttest.LeakCheck(t)
	c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/"})
	got := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		got <- err
	}()
	require.NoError(t, c.Close())
	require.ErrorIs(t, <-got, io.EOF)
	_, err := s.Write([]byte("late"))
	require.ErrorIs(t, err, io.EOF, "writing after the peer closed")
	require.NoError(t, s.Close())
}

func TestMaskBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var mask [4]byte
		binary.LittleEndian.PutUint32(mask[:], rng.Uint32())
		pos := rng.IntN(4)
		b := make([]byte, rng.IntN(100))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := slices.Clone(b)
		for i := range want {
			want[i] ^= mask[(pos+i)&3]
		}
		next := maskBytes(mask, pos, b)
		require.Equal(t, want, b)
		require.Equal(t, (pos+len(b))&3, next)
	}
}

func TestNetConn(t *testing.T) {
	transporttest.LeakCheck(t)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := Endpoint{URL: "ws://127.0.0.1:0/", CloseTimeout: 50 * time.Millisecond}.ListenWS(context.Background())
		if err != nil {
			return nil, nil, nil, err
		}
		return transporttest.MakePipe(l, func() (net.Conn, error) {
			return Endpoint{URL: l.URL(), CloseTimeout: 50 * time.Millisecond}.Dial(context.Background())
		})
	})
}

// Dialing is cancelled by the context while the server never answers the
// upgrade request, and while it never accepts the TLS handshake.
func TestDialCancelledDuringHandshake(t *testing.T) {
	for _, scheme := range []string{"ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			transporttest.LeakCheck(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			held := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					held <- c // accepted, never answered
				}
			}()
			ctx, cancel := context.WithCancel(transporttest.Context(t))
			go func() {
				c := <-held
				cancel()
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
			_, err = Endpoint{URL: scheme + "://" + ln.Addr().String() + "/"}.DialWS(ctx)
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

func TestListenRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:0/", "wss://127.0.0.1:0/", "::bad"} {
		_, err := Endpoint{URL: u}.Listen(context.Background())
		require.Error(t, err, u)
	}
	_, err := Endpoint{URL: "ftp://x/"}.Dial(context.Background())
	require.ErrorContains(t, err, "not ws or wss")
}

// A ping arriving while a long Write is blocked is answered right after the
// frame being written, without the reader waiting for the writer.
func TestPingAnsweredDuringBlockedWrite(t *testing.T) {
	transporttest.LeakCheck(t)
	c, s := pair(t, Endpoint{URL: "ws://127.0.0.1:0/", MaxFrameSize: 64 << 10})
	readerDone := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		readerDone <- err
	}()
	writeDone := make(chan error, 1)
	go func() {
		_, err := s.Write(make([]byte, 32<<20)) // blocks: the client is not reading yet
		writeDone <- err
	}()
	time.Sleep(50 * time.Millisecond)
	writeRaw(t, c, 0x89, []byte("ping"), 4)
	time.Sleep(50 * time.Millisecond) // the server's reader queues the pong

	// Read raw frames until the pong shows up among the data frames.
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for frames := 0; ; frames++ {
		require.Less(t, frames, 1000, "no pong")
		var h [2]byte
		_, err := io.ReadFull(r, h[:])
		require.NoError(t, err)
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			_, err = io.ReadFull(r, ext[:])
			n = int64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			_, err = io.ReadFull(r, ext[:])
			n = int64(binary.BigEndian.Uint64(ext[:]))
		}
		require.NoError(t, err)
		if h[0] == 0x8A {
			p := make([]byte, n)
			_, err = io.ReadFull(r, p)
			require.NoError(t, err)
			require.Equal(t, "ping", string(p))
			break
		}
		_, err = io.CopyN(io.Discard, r, n)
		require.NoError(t, err)
	}
	s.nc.Close()
	<-writeDone
	<-readerDone
}
