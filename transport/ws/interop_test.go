package ws

// Interoperability with the WebSocket implementations users run:
// github.com/coder/websocket and github.com/gorilla/websocket (both pass
// the Autobahn suite), each as client against our server and as server
// against our client: fragmented messages with a ping between fragments,
// messages longer than our frame limit (sent fragmented), close codes and
// reasons both ways, text frames refused, size limits both ways, and
// masking (each peer refuses frames masked the wrong way).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
)

// ourMax is our frame limit in these tests.
const ourMax = 1000

// peer is the other implementation's connection, whichever side it dialed.
type peer interface {
	// writeFragments sends one binary message as these frames, with a
	// ping (answered before it returns, for peers that wait) between the
	// second and third.
	writeFragments(parts ...[]byte) error
	// writeFrame sends one single-frame message, binary or text.
	writeFrame(text bool, p []byte) error
	// read returns the next message.
	read() ([]byte, error)
	// close starts the close handshake with code and reason.
	close(code int, reason string) error
	setReadLimit(n int64)
	// closeStatus extracts the close code and reason from a read error.
	closeStatus(err error) (int, string)
	pongs() int
	drop()
}

type gorillaPeer struct {
	c     *gorilla.Conn
	pongN atomic.Int32
}

func newGorillaPeer(c *gorilla.Conn) *gorillaPeer {
	p := &gorillaPeer{c: c}
	c.SetPongHandler(func(string) error { p.pongN.Add(1); return nil })
	return p
}

func (p *gorillaPeer) writeFragments(parts ...[]byte) error {
	// gorilla sends a frame each time its write buffer (256 bytes, see
	// connect) fills, and the last on Close: the message leaves as
	// several frames, with the ping among them.
	w, err := p.c.NextWriter(gorilla.BinaryMessage)
	if err != nil {
		return err
	}
	for i, part := range parts {
		if _, err := w.Write(part); err != nil {
			return err
		}
		if i == 1 {
			if err := p.c.WriteControl(gorilla.PingMessage, []byte("between"), time.Now().Add(10*time.Second)); err != nil {
				return err
			}
		}
	}
	return w.Close()
}

func (p *gorillaPeer) writeFrame(text bool, b []byte) error {
	t := gorilla.BinaryMessage
	if text {
		t = gorilla.TextMessage
	}
	return p.c.WriteMessage(t, b)
}

func (p *gorillaPeer) read() ([]byte, error) {
	_ = p.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := p.c.ReadMessage()
	return b, err
}

func (p *gorillaPeer) close(code int, reason string) error {
	return p.c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(code, reason), time.Now().Add(10*time.Second))
}

func (p *gorillaPeer) setReadLimit(n int64) { p.c.SetReadLimit(n) }

func (p *gorillaPeer) closeStatus(err error) (int, string) {
	var ce *gorilla.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text
	}
	return -1, err.Error()
}

func (p *gorillaPeer) pongs() int { return int(p.pongN.Load()) }
func (p *gorillaPeer) drop()      { p.c.Close() }

// coderPeer reads in a goroutine from the start: coder's Ping waits for
// its pong, which only a read takes in.
type coderPeer struct {
	c     *coder.Conn
	ctx   context.Context
	pongN int
	reads chan readResult
}

type readResult struct {
	b   []byte
	err error
}

func newCoderPeer(ctx context.Context, c *coder.Conn) *coderPeer {
	p := &coderPeer{c: c, ctx: ctx, reads: make(chan readResult, 16)}
	go func() {
		defer close(p.reads)
		for {
			_, b, err := c.Read(ctx)
			p.reads <- readResult{b, err}
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *coderPeer) writeFragments(parts ...[]byte) error {
	w, err := p.c.Writer(p.ctx, coder.MessageBinary)
	if err != nil {
		return err
	}
	for i, part := range parts {
		// Each Write is one frame.
		if _, err := w.Write(part); err != nil {
			return err
		}
		if i == 1 {
			// Ping waits for the pong, which the test's concurrent
			// read takes in.
			ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
			err := p.c.Ping(ctx)
			cancel()
			if err != nil {
				return err
			}
			p.pongN++
		}
	}
	return w.Close()
}

func (p *coderPeer) writeFrame(text bool, b []byte) error {
	t := coder.MessageBinary
	if text {
		t = coder.MessageText
	}
	return p.c.Write(p.ctx, t, b)
}

func (p *coderPeer) read() ([]byte, error) {
	select {
	case r, ok := <-p.reads:
		if !ok {
			return nil, net.ErrClosed
		}
		return r.b, r.err
	case <-time.After(20 * time.Second):
		return nil, errors.New("coder: no message within 20s")
	}
}

func (p *coderPeer) close(code int, reason string) error {
	return p.c.Close(coder.StatusCode(code), reason)
}

func (p *coderPeer) setReadLimit(n int64) { p.c.SetReadLimit(n) }

func (p *coderPeer) closeStatus(err error) (int, string) {
	var ce coder.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code), ce.Reason
	}
	return -1, err.Error()
}

func (p *coderPeer) pongs() int { return p.pongN }
func (p *coderPeer) drop() {
	_ = p.c.CloseNow()
	for range p.reads {
	}
}

// connect returns our Conn and the peer's, with the peer as the server
// (we dial) or as the client (we listen).
func connect(t *testing.T, lib string, peerServes bool, writeBuf int) (*Conn, peer) {
	t.Helper()
	ctx := transporttest.Context(t)
	if peerServes {
		peers := make(chan peer, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch lib {
			case "gorilla":
				u := gorilla.Upgrader{Subprotocols: []string{Subprotocol}, WriteBufferSize: writeBuf}
				c, err := u.Upgrade(w, r, nil)
				if err == nil {
					peers <- newGorillaPeer(c)
				}
			case "coder":
				c, err := coder.Accept(w, r, &coder.AcceptOptions{Subprotocols: []string{Subprotocol}})
				if err == nil {
					peers <- newCoderPeer(ctx, c)
				}
			}
		}))
		t.Cleanup(srv.Close)
		c, err := Endpoint{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/", MaxFrameSize: ourMax}.DialWS(ctx)
		require.NoError(t, err)
		p := <-peers
		t.Cleanup(func() { p.drop(); c.nc.Close() })
		require.Equal(t, Subprotocol, c.Subprotocol())
		return c, p
	}
	l, err := Endpoint{URL: "ws://127.0.0.1:0/", MaxFrameSize: ourMax}.ListenWS(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	var p peer
	switch lib {
	case "gorilla":
		d := gorilla.Dialer{Subprotocols: []string{Subprotocol}, WriteBufferSize: writeBuf}
		c, _, err := d.DialContext(ctx, l.URL(), nil)
		require.NoError(t, err)
		require.Equal(t, Subprotocol, c.Subprotocol())
		p = newGorillaPeer(c)
	case "coder":
		c, _, err := coder.Dial(ctx, l.URL(), &coder.DialOptions{Subprotocols: []string{Subprotocol}})
		require.NoError(t, err)
		require.Equal(t, Subprotocol, c.Subprotocol())
		p = newCoderPeer(ctx, c)
	}
	nc, err := l.Accept()
	require.NoError(t, err)
	c := nc.(*Conn)
	t.Cleanup(func() { p.drop(); c.nc.Close() })
	return c, p
}

// pattern returns n bytes that differ at every offset within 251.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

func TestInterop(t *testing.T) {
	for _, lib := range []string{"gorilla", "coder"} {
		for _, peerServes := range []bool{false, true} {
			name := lib + "/peer-is-client"
			if peerServes {
				name = lib + "/peer-is-server"
			}
			t.Run(name, func(t *testing.T) { testInterop(t, lib, peerServes) })
		}
	}
}

func testInterop(t *testing.T, lib string, peerServes bool) {
	t.Run("fragments with a ping between", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, p := connect(t, lib, peerServes, 256)
		parts := [][]byte{pattern(300, 1), pattern(500, 2), pattern(700, 3), pattern(10, 4)}
		want := bytes.Join(parts, nil)
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(want))
			_, err := io.ReadFull(c, b)
			if err != nil {
				b = nil
			}
			got <- b
			// Keep reading, so the peer's pong and close are seen.
			_, _ = io.Copy(io.Discard, c)
		}()
		require.NoError(t, p.writeFragments(parts...))
		require.Equal(t, want, <-got)

		// Ours, longer than our frame limit: several frames, one
		// message for the peer.
		big := pattern(3*ourMax+500, 9)
		_, err := c.Write(big)
		require.NoError(t, err)
		msg, err := p.read()
		require.NoError(t, err)
		require.Equal(t, big, msg)
		require.Equal(t, 1, p.pongs(), "the ping between fragments was answered")
	})

	t.Run("peer closes with a code", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, p := connect(t, lib, peerServes, 256)
		done := make(chan error, 1)
		go func() { done <- p.close(4001, "bye now") }()
		_, err := c.Read(make([]byte, 10))
		var ce *CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, &CloseError{Code: 4001, Reason: "bye now"}, ce)
		require.NoError(t, <-done)
		require.NoError(t, c.Close())
	})

	t.Run("we close with a code", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, p := connect(t, lib, peerServes, 256)
		done := make(chan error, 1)
		go func() { done <- c.CloseWithStatus(4002, "done here") }()
		_, err := p.read()
		code, reason := p.closeStatus(err)
		require.Equal(t, 4002, code)
		require.Equal(t, "done here", reason)
		require.NoError(t, <-done)
	})

	t.Run("text frame refused", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, p := connect(t, lib, peerServes, 256)
		require.NoError(t, p.writeFrame(true, []byte(`{"execute": "stop"}`)))
		_, err := c.Read(make([]byte, 10))
		require.ErrorIs(t, err, ErrTextFrame)
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, uint16(CloseUnsupportedData), pe.Code)
		_, err = p.read()
		code, _ := p.closeStatus(err)
		require.Equal(t, CloseUnsupportedData, code)
	})

	t.Run("frame over our limit", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, p := connect(t, lib, peerServes, 4096) // gorilla's client frames at its buffer size
		require.NoError(t, p.writeFrame(false, pattern(ourMax+1, 5)))
		_, err := c.Read(make([]byte, 10))
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, uint16(CloseMessageTooBig), pe.Code)
		require.ErrorIs(t, err, ErrProtocol)
		var le *action.LimitError
		require.ErrorAs(t, err, &le)
		require.Equal(t, action.LimitError{What: "frame payload bytes", Size: 1001, Limit: 1000}, *le)
		_, err = p.read()
		code, _ := p.closeStatus(err)
		require.Equal(t, CloseMessageTooBig, code)
	})

	t.Run("message over the peer's limit", func(t *testing.T) {
		transporttest.LeakCheck(t)
		c, p := connect(t, lib, peerServes, 256)
		p.setReadLimit(500)
		read := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 10))
			read <- err
		}()
		_, err := c.Write(pattern(800, 6))
		require.NoError(t, err)
		_, err = p.read()
		require.Error(t, err)
		var ce *CloseError
		require.ErrorAs(t, <-read, &ce)
		require.Equal(t, uint16(CloseMessageTooBig), ce.Code)
	})
}
