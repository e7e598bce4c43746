package main

import (
	"net/http"
	"os"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// wsDialer dials QMP over WebSocket (through qmp-ws-bridge, or any server
// carrying QMP in binary frames). A bearer token for the bridge is taken
// from $QMP_BRIDGE_TOKEN.
func wsDialer(addr string) (transport.Dialer, error) {
	ep := ws.Endpoint{URL: addr}
	if tok := os.Getenv("QMP_BRIDGE_TOKEN"); tok != "" {
		ep.Header = http.Header{"Authorization": {"Bearer " + tok}}
	}
	return ep, nil
}
