// Package endpoint turns the address syntax shared by the QMP tools into
// transport endpoints: "unix:/path" (or a bare "/path"), "tcp:host:port",
// "ws://host:port/path" and "wss://host:port/path". Every endpoint both
// dials and listens, for QEMU started in server mode (-qmp
// unix:/path,server=on) and in client mode (-qmp unix:/path) alike.
//
// It lives beside the transports, not in a protocol package, so that a
// program that embeds only a machine links none of them.
package endpoint

import (
	"fmt"
	"strings"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// Endpoint dials and listens: unix.Endpoint, tcp.Endpoint or ws.Endpoint.
type Endpoint interface {
	transport.Dialer
	transport.ListenOpener
}

// AddressError reports an address in none of the known forms.
type AddressError struct {
	Addr string
}

// Error quotes the address and lists the forms Parse accepts.
func (e *AddressError) Error() string {
	return fmt.Sprintf("endpoint: address %q is none of unix:PATH, tcp:HOST:PORT, ws://HOST/PATH, wss://HOST/PATH", e.Addr)
}

// Parse turns addr into an endpoint: "unix:/path" or "/path" is a
// unix.Endpoint, "tcp:host:port" a tcp.Endpoint, "ws://…" and "wss://…" a
// ws.Endpoint. Anything else is an *AddressError.
func Parse(addr string) (Endpoint, error) {
	switch {
	case strings.HasPrefix(addr, "ws://"), strings.HasPrefix(addr, "wss://"):
		return ws.Endpoint{URL: addr}, nil
	case strings.HasPrefix(addr, "unix:"):
		return unix.Endpoint{Path: strings.TrimPrefix(addr, "unix:")}, nil
	case strings.HasPrefix(addr, "tcp:"):
		return tcp.Endpoint{Address: strings.TrimPrefix(addr, "tcp:")}, nil
	case strings.HasPrefix(addr, "/"):
		return unix.Endpoint{Path: addr}, nil
	}
	return nil, &AddressError{Addr: addr}
}

// ParseListen is Parse for a listening socket: the same forms, "tcp:host:0"
// picking a free port.
func ParseListen(addr string) (transport.ListenOpener, error) {
	e, err := Parse(addr)
	if err != nil {
		return nil, err
	}
	return e, nil
}
