//go:build linux

package transport

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// TestWriteLoopStartsOnlyWhenNeeded checks that small output on a plain
// socket or a TryWriter is written by the caller without starting the write loop, and
// that output the caller cannot write (a net.Pipe) starts it.
func TestWriteLoopStartsOnlyWhenNeeded(t *testing.T) {
	defer goleak.VerifyNone(t)
	unixPair := func(t *testing.T) (net.Conn, net.Conn) {
		path := filepath.Join(t.TempDir(), "s")
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		defer ln.Close()
		a, err := net.Dial("unix", path)
		require.NoError(t, err)
		b, err := ln.Accept()
		require.NoError(t, err)
		return a, b
	}
	wsPair := func(t *testing.T) (net.Conn, net.Conn) {
		ctx := context.Background()
		ln, err := ws.Endpoint{URL: "ws://127.0.0.1:0/"}.ListenWS(ctx)
		require.NoError(t, err)
		defer ln.Close()
		ch := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			ch <- c
		}()
		b, err := ws.Endpoint{URL: ln.URL()}.Dial(ctx)
		require.NoError(t, err)
		a := <-ch
		require.NotNil(t, a)
		return a, b
	}
	tests := []struct {
		name    string
		pair    func(t *testing.T) (net.Conn, net.Conn)
		started bool
	}{
		{"unix socket, small echoes", unixPair, false},
		{"websocket (a TryWriter), small echoes", wsPair, false},
		{"pipe", func(*testing.T) (net.Conn, net.Conn) { return net.Pipe() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s := New(Config[string, *lenmsg.Machine]{
				Logger:     slog.New(slog.DiscardHandler),
				NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{Echo: true} },
			})
			a, b := tt.pair(t)
			defer b.Close()
			require.NoError(t, s.Start(ctx, a))
			for _, msg := range []string{"one", "two", "three"} {
				wire := lenmsg.Append(nil, []byte(msg))
				_, err := b.Write(wire)
				require.NoError(t, err)
				echo := make([]byte, len(wire))
				_, err = io.ReadFull(b, echo)
				require.NoError(t, err)
				require.Equal(t, wire, echo)
			}
			s.mu.Lock()
			started := s.c.writerStarted
			s.mu.Unlock()
			require.Equal(t, tt.started, started)
			require.NoError(t, s.Disconnect(ctx))
		})
	}
}
