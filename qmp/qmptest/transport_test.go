package qmptest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// testCert returns a server config with a self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	server, client, err := testcert.New()
	require.NoError(t, err)
	return server, client
}

// QMP over WebSocket (QEMU's own websocket chardev never answers a
// command, so this is served by our own server), plain and over TLS, with
// pipelined executes from several goroutines, events and a large reply.
func TestQMPOverWebSocket(t *testing.T) {
	serverTLS, clientTLS := testCert(t)
	tests := []struct {
		name   string
		listen transport.ListenOpener
		dial   func(addr string) transport.Dialer
		scheme string
	}{
		{"ws", ws.Endpoint{URL: "ws://127.0.0.1:0/qmp"}, func(addr string) transport.Dialer {
			d, err := endpoint.Parse(addr)
			require.NoError(t, err)
			return d
		}, "ws://"},
		{"wss", ws.Endpoint{URL: "wss://127.0.0.1:0/qmp", TLS: serverTLS}, func(addr string) transport.Dialer {
			return ws.Endpoint{URL: addr, TLS: clientTLS}
		}, "wss://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			s := qmptest.NewServer(qmptest.Config{})
			defer s.Close()
			s.Handle("echo", qmptest.Echo)
			require.NoError(t, s.StartEndpoint(ctx, tt.listen))
			require.True(t, strings.HasPrefix(s.Addr(), tt.scheme), s.Addr())

			c := qmpclient.NewClient(qmpclient.Config{})
			require.NoError(t, c.ConnectDialer(ctx, tt.dial(s.Addr())))
			stops := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 50 {
						args := fmt.Sprintf(`{"g": %d, "i": %d}`, g, i)
						got, err := c.Execute(ctx, "echo", []byte(args))
						if err == nil && string(got) != args {
							err = fmt.Errorf("reply %s to %s", got, args)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			_, err := c.Execute(ctx, "stop", nil)
			require.NoError(t, err)
			ev, err := stops.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, "STOP", ev.Name)
			schema, err := c.Execute(ctx, "query-qmp-schema", nil)
			require.NoError(t, err)
			require.Greater(t, len(schema), 200_000)
			require.NoError(t, c.Disconnect(ctx))
		})
	}
}

func TestStartAddresses(t *testing.T) {
	tests := []struct{ addr, prefix string }{
		{"tcp:127.0.0.1:0", "tcp:127.0.0.1:"},
		{"ws://127.0.0.1:0/x", "ws://127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ctx := testCtx(t)
			s := qmptest.NewServer(qmptest.Config{})
			defer s.Close()
			require.NoError(t, s.Start(ctx, tt.addr))
			require.True(t, strings.HasPrefix(s.Addr(), tt.prefix), s.Addr())
			c := connect(t, s.Addr())
			_, err := c.Execute(ctx, "query-status", nil)
			require.NoError(t, err)
			require.NoError(t, c.Disconnect(ctx))
		})
	}
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	require.ErrorContains(t, s.Start(context.Background(), "carrier-pigeon:1"), "carrier-pigeon")
}
