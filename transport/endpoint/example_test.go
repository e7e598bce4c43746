package endpoint_test

import (
	"errors"
	"fmt"

	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// Parse turns the address a user typed (a -qmp style socket path, a TCP
// host:port or a WebSocket URL) into an endpoint that can both dial and
// listen; a type switch recovers the concrete transport when its options
// (file mode, TLS, origin) need setting.
func ExampleParse() {
	for _, addr := range []string{"unix:/run/qemu/vm0.qmp", "/run/qemu/vm1.qmp", "tcp:127.0.0.1:4444", "ws://127.0.0.1:8080/qmp"} {
		e, err := endpoint.Parse(addr)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch e := e.(type) {
		case unix.Endpoint:
			fmt.Println("unix socket", e.Path)
		case tcp.Endpoint:
			fmt.Println("tcp address", e.Address)
		case ws.Endpoint:
			fmt.Println("websocket", e.URL)
		}
	}
	// Output:
	// unix socket /run/qemu/vm0.qmp
	// unix socket /run/qemu/vm1.qmp
	// tcp address 127.0.0.1:4444
	// websocket ws://127.0.0.1:8080/qmp
}

// An address in none of the known forms is an *AddressError that names it
// and lists the accepted forms, ready to show to the user.
func ExampleAddressError() {
	_, err := endpoint.Parse("localhost:4444")
	var addrErr *endpoint.AddressError
	if errors.As(err, &addrErr) {
		fmt.Println("bad address:", addrErr.Addr)
	}
	fmt.Println(err)
	// Output:
	// bad address: localhost:4444
	// endpoint: address "localhost:4444" is none of unix:PATH, tcp:HOST:PORT, ws://HOST/PATH, wss://HOST/PATH
}
