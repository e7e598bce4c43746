package main

import (
	"fmt"

	"github.com/wirereactor/wirereactor/transport"
)

// wsDialer dials QMP over WebSocket.
func wsDialer(addr string) (transport.Dialer, error) {
	return nil, fmt.Errorf("address %q: WebSocket support is not built yet (transport/ws)", addr)
}
