package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wirereactor/wirereactor/frame"
)

// The report's transport workloads (bench/internal/harness/transport.go):
// 64-byte frames echoed by the server, and bulk ops of 64 frames of 32 KiB
// one way. Every frame is one binary message; both ends check each frame's
// header, as the other sides decode theirs.
const bulkFrames = 64

func benchFrame(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i)
	}
	f := frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin,
		Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseContinuation, Payload: p}
	return f.Append(nil)
}

// wsConn is one end of a connection of either library.
type wsConn interface {
	write(ctx context.Context, p []byte) error
	// read reads one message into buf.
	read(ctx context.Context, buf []byte) ([]byte, error)
	close()
}

// readMsg reads a whole message from r into buf.
func readMsg(r io.Reader, buf []byte) ([]byte, error) {
	n := 0
	for {
		if n == len(buf) {
			return nil, errors.New("message larger than the buffer")
		}
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return checkFrame(buf[:n])
		}
		if err != nil {
			return nil, err
		}
	}
}

func checkFrame(msg []byte) ([]byte, error) {
	if len(msg) < frame.HeaderSize {
		return nil, fmt.Errorf("message of %d bytes is no frame", len(msg))
	}
	h, err := frame.ParseHeader(msg[:frame.HeaderSize])
	if err != nil {
		return nil, err
	}
	if frame.HeaderSize+int(h.Length) != len(msg) {
		return nil, fmt.Errorf("frame of %d bytes in a message of %d", h.Length, len(msg))
	}
	return msg, nil
}

type coderConn struct{ c *coder.Conn }

func (c coderConn) write(ctx context.Context, p []byte) error {
	return c.c.Write(ctx, coder.MessageBinary, p)
}

func (c coderConn) read(ctx context.Context, buf []byte) ([]byte, error) {
	_, r, err := c.c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	return readMsg(r, buf)
}

func (c coderConn) close() { c.c.CloseNow() }

type gorillaConn struct{ c *gorilla.Conn }

func (c gorillaConn) write(_ context.Context, p []byte) error {
	return c.c.WriteMessage(gorilla.BinaryMessage, p)
}

func (c gorillaConn) read(_ context.Context, buf []byte) ([]byte, error) {
	_, r, err := c.c.NextReader()
	if err != nil {
		return nil, err
	}
	return readMsg(r, buf)
}

func (c gorillaConn) close() { c.c.Close() }

// wsLib is one library's server handler and dialer.
type wsLib struct {
	accept func(w http.ResponseWriter, r *http.Request) (wsConn, error)
	dial   func(ctx context.Context, url string) (wsConn, error)
}

var wsLibs = map[string]wsLib{
	"coder": {
		accept: func(w http.ResponseWriter, r *http.Request) (wsConn, error) {
			c, err := coder.Accept(w, r, nil)
			if err != nil {
				return nil, err
			}
			c.SetReadLimit(1 << 20)
			return coderConn{c}, nil
		},
		dial: func(ctx context.Context, url string) (wsConn, error) {
			c, _, err := coder.Dial(ctx, url, nil)
			if err != nil {
				return nil, err
			}
			c.SetReadLimit(1 << 20)
			return coderConn{c}, nil
		},
	},
	"gorilla": {
		accept: func(w http.ResponseWriter, r *http.Request) (wsConn, error) {
			u := gorilla.Upgrader{}
			c, err := u.Upgrade(w, r, nil)
			if err != nil {
				return nil, err
			}
			return gorillaConn{c}, nil
		},
		dial: func(ctx context.Context, url string) (wsConn, error) {
			c, _, err := gorilla.DefaultDialer.DialContext(ctx, url, nil)
			if err != nil {
				return nil, err
			}
			return gorillaConn{c}, nil
		},
	},
}

func runWS(args []string) (result, error) {
	fs := newFlags("ws")
	libName := fs.String("lib", "coder", "coder or gorilla")
	mode := fs.String("mode", "rt", "rt (64 B frame round trips) or bulk (64 frames of 32 KiB one way)")
	d := fs.Duration("time", 300*time.Millisecond, "measuring time")
	if err := fs.Parse(args); err != nil {
		return result{}, err
	}
	lib, ok := wsLibs[*libName]
	if !ok {
		return result{}, fmt.Errorf("unknown library %q", *libName)
	}
	var size, frames int
	switch *mode {
	case "rt":
		size, frames = 64, 1
	case "bulk":
		size, frames = 32<<10, bulkFrames
	default:
		return result{}, fmt.Errorf("unknown mode %q", *mode)
	}
	wire := benchFrame(size)
	ctx := context.Background()

	// The server: echo each frame (rt), or read bulkFrames frames and say
	// so (bulk).
	done := make(chan error, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := lib.accept(w, r)
		if err != nil {
			done <- err
			return
		}
		defer c.close()
		buf := make([]byte, 64<<10)
		for {
			for range frames {
				msg, err := c.read(ctx, buf)
				if err == nil && *mode == "rt" {
					err = c.write(ctx, msg)
				}
				if err != nil {
					done <- err
					return
				}
			}
			if *mode == "bulk" {
				done <- nil
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := lib.dial(ctx, "ws://"+ln.Addr().String()+"/bench")
	if err != nil {
		return result{}, err
	}
	defer c.close()

	buf := make([]byte, 64<<10)
	op := func() error {
		for range frames {
			if err := c.write(ctx, wire); err != nil {
				return err
			}
		}
		if *mode == "bulk" {
			return <-done
		}
		got, err := c.read(ctx, buf)
		if err == nil && len(got) != len(wire) {
			err = fmt.Errorf("echoed %d bytes, sent %d", len(got), len(wire))
		}
		return err
	}
	loop := func(d time.Duration) (int64, error) {
		var n int64
		for deadline := time.Now().Add(d); n == 0 || time.Now().Before(deadline); n++ {
			if err := op(); err != nil {
				return n, err
			}
		}
		return n, nil
	}
	if _, err := loop(*d / 10); err != nil {
		return result{}, err
	}
	var r result
	m := startMeter()
	n, err := loop(*d)
	bytesPerOp := 0
	if *mode == "bulk" {
		bytesPerOp = frames * len(wire)
	}
	m.stop(&r, n, bytesPerOp)
	return r, err
}
