package ws_test

import (
	"context"
	"fmt"
	"io"

	"github.com/wirereactor/wirereactor/transport/ws"
)

// A WebSocket listener and client: the connection is a byte stream of
// binary frames with subprotocol "binary" negotiated.
func Example() {
	ctx := context.Background()
	ln, err := ws.Endpoint{URL: "ws://127.0.0.1:0/qmp"}.ListenWS(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c) // echo until the client closes
	}()

	c, err := ws.Endpoint{URL: ln.URL()}.DialWS(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("subprotocol:", c.Subprotocol())
	_, _ = c.Write([]byte("hello, "))
	_, _ = c.Write([]byte("world"))
	buf := make([]byte, 12)
	_, _ = io.ReadFull(c, buf) // frame boundaries do not matter
	fmt.Println(string(buf))
	fmt.Println(c.Close())
	// Output:
	// subprotocol: binary
	// hello, world
	// <nil>
}
