package reactor_test

import (
	"fmt"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/reactor"
)

// A client and a server reactor talking through the test kit's in-memory
// pump (actiontest.Pump): the bytes one side sends are copied and fed to the
// other, with no sockets and no goroutines, so the whole exchange is
// deterministic. This is the shape of a unit test for code built on the
// reactors.
func Example_pump() {
	client := reactor.NewClientMachine(reactor.ClientMachineConfig{
		MultipleSends:    true,
		ContentEncodings: []string{reactor.EncodingZlib, reactor.EncodingIdentity},
	})
	server := reactor.NewServerMachine(reactor.ServerMachineConfig{})
	var out *reactor.OutputStream // made once the client's settings are in

	// The client calls two commands and flushes them into one send.
	client.CallCommand(reactor.Request{Name: "heads"})
	client.CallCommand(reactor.Request{Name: "lookup", Args: map[hgcbor.Bytes]any{"key": []byte("tip")}})
	client.FlushCommands()

	onClient := actiontest.OnDeliver(client, func(r reactor.Response) {
		if r.Kind == reactor.ResponseKindData && len(r.Data) > 0 {
			vals, _ := hgcbor.DecodeAll(r.Data)
			for _, v := range vals {
				fmt.Printf("client: request %d got %v\n", r.RequestID, render(v))
			}
		}
		if r.EOS {
			fmt.Printf("client: request %d done\n", r.RequestID)
		}
	})
	// The server runs delivered commands and sends the responses.
	onServer := actiontest.OnDeliver(server, func(cmd reactor.Command) {
		if out == nil {
			out = server.NewOutputStream()
		}
		fmt.Printf("server: run %s %v\n", cmd.Name, render(cmd.Args.Map()))
		switch cmd.Name {
		case "heads":
			server.RespondObjects(out, cmd.RequestID, []any{[]byte("0123abcd")})
		default:
			server.RespondCommandError(out, cmd.RequestID, "unknown key %s", []any{[]byte("tip")})
		}
	})
	c, s := actiontest.Pump(client, server, onClient, onServer)
	if c.Err() != nil || s.Err() != nil {
		fmt.Println("errors:", c.Err(), s.Err())
		return
	}
	fmt.Println("stream encoding:", out.Encoding())
	// Output:
	// server: run heads map[]
	// server: run lookup map[key:tip]
	// client: request 1 got map[status:ok]
	// client: request 1 got [0123abcd]
	// client: request 1 done
	// client: request 3 got map[error:map[args:[tip] message:unknown key %s] status:error]
	// client: request 3 done
	// stream encoding: zlib
}

// render turns decoded CBOR into something fmt prints readably.
func render(v any) any {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = render(x)
		}
		return out
	case map[any]any:
		out := map[string]any{}
		for k, x := range v {
			out[fmt.Sprint(render(k))] = render(x)
		}
		return out
	case hgcbor.Bytes:
		return string(v)
	}
	return v
}
