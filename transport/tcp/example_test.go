package tcp_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/transport/tcp"
)

// Endpoints dial and listen with TCP_NODELAY and keepalive; with a
// *tls.Config they speak TLS on either side.
func Example() {
	ctx := context.Background()
	serverTLS, clientTLS, _ := testcert.New() // a throwaway certificate

	ln, err := tcp.Endpoint{Address: "127.0.0.1:0", TLS: serverTLS}.Listen(ctx)
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
		buf := make([]byte, 64)
		n, _ := c.Read(buf) // runs the TLS handshake first
		_, _ = c.Write([]byte(strings.ToUpper(string(buf[:n]))))
	}()

	c, err := tcp.Endpoint{Address: ln.Addr().String(), TLS: clientTLS}.Dial(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte("over tls"))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output:
	// OVER TLS
}
