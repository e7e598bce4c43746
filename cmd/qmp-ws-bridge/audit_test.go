package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/ws"
)

// Close ends every relay in about one close timeout, however many clients
// fail to answer the close handshake (a stopped browser, a hostile
// client): before, it closed them one after another, waiting up to a
// second for each.
func TestBridgeCloseWithSilentClients(t *testing.T) {
	const n = 8
	backends := map[string]string{}
	for i := 0; i < n; i++ {
		backends[fmt.Sprint("vm", i)] = newFakeBackend(t).addr()
	}
	base, b := startBridge(t, Config{Backends: backends})
	var clients []*ws.Conn
	for name := range backends {
		c, err := ws.Endpoint{URL: base + "/vm/" + name}.DialWS(context.Background())
		require.NoError(t, err)
		defer c.SetDeadline(time.Unix(1, 0)) // never read: the close frames are not answered
		clients = append(clients, c)
		// The relay is running once the greeting arrives.
		_, err = c.Read(make([]byte, 1))
		require.NoError(t, err)
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Duration(n/2) * ws.DefaultCloseTimeout):
		t.Fatalf("Close with %d silent clients still running after %v", n, time.Since(start))
	}
	<-done
	for _, c := range clients {
		_ = c.CloseWithStatus(ws.CloseNormal, "")
	}
}
