package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

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
// the server when it gave some: a WebSocket server (qmp-ws-bridge) that
// refused the upgrade is quoted with its status and message, with a hint
// for the bridge's 401 and 403; one that closed the connection before QMP
// started (busy, backend unreachable) with its close status and reason.
func describeConnectError(err error, addr string, haveToken bool) string {
	var he *ws.HandshakeError
	if errors.As(err, &he) && he.Reason == "" {
		msg := fmt.Sprintf("connecting to %s: refused with %s", addr, he.Status)
		if body := strings.TrimSpace(he.Body); body != "" {
			first, _, _ := strings.Cut(body, "\n")
			msg += ": " + strings.TrimSpace(first)
		}
		switch {
		case he.StatusCode == http.StatusUnauthorized && haveToken:
			msg += " (the bridge refused the token from --token or QMP_BRIDGE_TOKEN)"
		case he.StatusCode == http.StatusUnauthorized:
			msg += " (give --token or set QMP_BRIDGE_TOKEN)"
		case he.StatusCode == http.StatusForbidden:
			msg += " (the bridge's --allow-origin does not accept " + originOf(addr) + ")"
		}
		return msg
	}
	var ce *ws.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("connecting to %s: the server closed the connection before QMP started, status %d %q", addr, ce.Code, ce.Reason)
	}
	// The shell speaks for itself: "connect failed: …" without the
	// library's package prefix.
	var te *transport.ConnectError
	if errors.As(err, &te) {
		return te.Phase + " failed: " + te.Err.Error()
	}
	return err.Error()
}

// originOf is the Origin the client sends for a ws:// or wss:// address:
// http:// or https:// and its host.
func originOf(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "this origin"
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}
