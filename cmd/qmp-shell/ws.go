package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// wsDialer dials QMP over WebSocket (through qmp-ws-bridge, or any server
// carrying QMP in binary frames). token, if set, is sent as a bearer token
// (qmp-ws-bridge --token); caFile, if set, is a PEM file of the
// certificates trusted for wss:// instead of the system's.
func wsDialer(addr, caFile, token string) (transport.Dialer, error) {
	ep := ws.Endpoint{URL: addr}
	if token != "" {
		ep.Header = http.Header{"Authorization": {"Bearer " + token}}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in the file", caFile)
		}
		ep.TLS = &tls.Config{RootCAs: pool}
	}
	return ep, nil
}

// describeConnectError says why connecting to addr failed, in the words of
// the server when it gave some: a WebSocket bridge that closed the
// connection before QMP started (busy, backend unreachable) is quoted.
func describeConnectError(err error, addr string, haveToken bool) string {
	var ce *ws.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s closed the connection before QMP started: status %d: %s", addr, ce.Code, ce.Reason)
	}
	return err.Error()
}
