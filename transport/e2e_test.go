package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/reactor"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

type frameServer = transport.Server[reactor.Command, *reactor.ServerMachine]
type frameClient = transport.Session[reactor.Response, *reactor.ClientMachine]

// newFrameServer answers every command with one object: "ran NAME".
func newFrameServer() *frameServer {
	return &frameServer{
		Config: transport.Config[reactor.Command, *reactor.ServerMachine]{
			Name:       "frames",
			Logger:     quiet,
			NewMachine: func() *reactor.ServerMachine { return reactor.NewServerMachine(reactor.ServerMachineConfig{}) },
		},
		Handle: func(ctx context.Context, s *transport.Session[reactor.Command, *reactor.ServerMachine]) {
			var out *reactor.OutputStream
			for {
				cmd, err := s.Recv(ctx)
				if err != nil {
					return
				}
				err = s.Do(ctx, func(r *reactor.ServerMachine) error {
					if out == nil {
						out = r.NewOutputStream()
					}
					return r.RespondObjects(out, cmd.RequestID, []byte("ran "+cmd.Name))
				})
				if err != nil {
					return
				}
			}
		},
	}
}

func newFrameClient(name string) *frameClient {
	return transport.New(transport.Config[reactor.Response, *reactor.ClientMachine]{
		Name:   name,
		Logger: quiet,
		NewMachine: func() *reactor.ClientMachine {
			return reactor.NewClientMachine(reactor.ClientMachineConfig{
				MultipleSends:    true,
				ContentEncodings: []string{reactor.EncodingZstd8MB, reactor.EncodingZlib, reactor.EncodingIdentity},
			})
		},
		// No Retain: Response.Data may alias the read buffer, and the
		// session copies it through the reactor's action.Retainer.
	})
}

// call runs one command and returns the decoded objects of its response.
func call(ctx context.Context, c *frameClient, name string) ([]any, error) {
	var rid uint16
	err := c.Do(ctx, func(m *reactor.ClientMachine) error {
		var err error
		if rid, err = m.CallCommand(reactor.Request{Name: name, Args: map[hgcbor.Bytes]any{"n": []byte(name)}}); err != nil {
			return err
		}
		return m.FlushCommands()
	})
	if err != nil {
		return nil, err
	}
	var data []byte
	for {
		r, err := c.Recv(ctx)
		if err != nil {
			return nil, err
		}
		if r.RequestID != rid {
			return nil, fmt.Errorf("response for request %d, want %d", r.RequestID, rid)
		}
		data = append(data, r.Data...)
		if r.EOS {
			return hgcbor.DecodeAll(data)
		}
	}
}

type frameTransport struct {
	name   string
	listen func(t *testing.T) (net.Listener, transport.Dialer)
}

func frameTransports(t *testing.T) []frameTransport {
	serverTLS, clientTLS, err := testcert.New()
	require.NoError(t, err)
	return []frameTransport{
		{"pipe", func(t *testing.T) (net.Listener, transport.Dialer) {
			l := newPipeListener()
			return l, transport.DialFunc(l.Dial)
		}},
		{"unix", func(t *testing.T) (net.Listener, transport.Dialer) {
			dir, err := os.MkdirTemp("", "wr")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(dir) })
			ep := unix.Endpoint{Path: filepath.Join(dir, "s")}
			l, err := ep.Listen(testCtx(t))
			require.NoError(t, err)
			return l, ep
		}},
		{"tcp", func(t *testing.T) (net.Listener, transport.Dialer) {
			l, err := tcp.Endpoint{Address: "127.0.0.1:0"}.Listen(testCtx(t))
			require.NoError(t, err)
			return l, tcp.Endpoint{Address: l.Addr().String()}
		}},
		{"tls", func(t *testing.T) (net.Listener, transport.Dialer) {
			l, err := tcp.Endpoint{Address: "127.0.0.1:0", TLS: serverTLS}.Listen(testCtx(t))
			require.NoError(t, err)
			return l, tcp.Endpoint{Address: l.Addr().String(), TLS: clientTLS}
		}},
		{"ws", func(t *testing.T) (net.Listener, transport.Dialer) {
			l, err := ws.Endpoint{URL: "ws://127.0.0.1:0/frames"}.ListenWS(testCtx(t))
			require.NoError(t, err)
			return l, ws.Endpoint{URL: l.URL()}
		}},
		{"wss", func(t *testing.T) (net.Listener, transport.Dialer) {
			l, err := ws.Endpoint{URL: "wss://127.0.0.1:0/frames", TLS: serverTLS}.ListenWS(testCtx(t))
			require.NoError(t, err)
			return l, ws.Endpoint{URL: l.URL(), TLS: clientTLS}
		}},
	}
}

// The frame-protocol reactors end to end over every transport, with many
// concurrent clients against one server.
func TestFrameProtocolEndToEnd(t *testing.T) {
	for _, tr := range frameTransports(t) {
		t.Run(tr.name, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)
			ln, dialer := tr.listen(t)
			srv := newFrameServer()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()

			const clients, calls = 8, 10
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := range clients {
				wg.Go(func() {
					c := newFrameClient(fmt.Sprintf("client%d", i))
					if err := c.Connect(ctx, dialer); err != nil {
						errs <- err
						return
					}
					for j := range calls {
						name := fmt.Sprintf("cmd-%d-%d", i, j)
						objs, err := call(ctx, c, name)
						if err != nil {
							errs <- fmt.Errorf("%s: %w", name, err)
							break
						}
						if len(objs) != 2 || !bytes.Equal(objs[1].([]byte), []byte("ran "+name)) {
							errs <- fmt.Errorf("%s: got %v", name, objs)
							break
						}
					}
					if err := c.Disconnect(ctx); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, srv.Shutdown(ctx))
			require.ErrorIs(t, <-served, transport.ErrServerClosed)
			require.Equal(t, 0, srv.Sessions())
		})
	}
}

func TestServerShutdownAndClose(t *testing.T) {
	for _, mode := range []string{"shutdown", "close", "context"} {
		t.Run(mode, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)
			ln := newPipeListener()
			srv := newFrameServer()
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(sctx, ln) }()

			c := newFrameClient("client")
			require.NoError(t, c.Connect(ctx, transport.DialFunc(ln.Dial)))
			_, err := call(ctx, c, "one")
			require.NoError(t, err)
			require.Equal(t, 1, srv.Sessions())

			switch mode {
			case "shutdown":
				require.NoError(t, srv.Shutdown(ctx))
				require.ErrorIs(t, <-served, transport.ErrServerClosed)
			case "close":
				require.NoError(t, srv.Close())
				require.ErrorIs(t, <-served, transport.ErrServerClosed)
			case "context":
				cancel()
				require.ErrorIs(t, <-served, context.Canceled)
			}
			require.Equal(t, 0, srv.Sessions())
			// The client sees the server hang up.
			require.NoError(t, c.WaitState(ctx, transport.RunstateDisconnecting))
			require.ErrorIs(t, c.Disconnect(ctx), transport.ErrPeerClosed)
			// A closed server serves nothing.
			require.ErrorIs(t, srv.Serve(ctx, newPipeListener()), transport.ErrServerClosed)
		})
	}
}
