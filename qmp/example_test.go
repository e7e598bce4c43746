package qmp_test

import (
	"fmt"
	"time"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/qmp"
)

// A client machine and a server machine talking through memory with the
// test kit's pump (actiontest.Pump): no socket, no goroutine. The pump does
// what a transport does for real.
func Example() {
	client := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	server := qmp.NewServerMachine(qmp.ServerMachineConfig{})
	id, _ := client.Execute("query-status", nil) // held until the handshake is over
	onClient := actiontest.OnDeliver(client, func(r qmp.Received) {
		switch r.Kind {
		case qmp.ReceivedKindGreeting:
			fmt.Println("client: greeted by QEMU", r.Greeting.Version.QEMU)
		case qmp.ReceivedKindReady:
			fmt.Println("client: ready, oob enabled:", client.OOBEnabled())
		case qmp.ReceivedKindEvent:
			fmt.Println("client: event", r.Event.Name, r.Event.Timestamp.UTC().Format(time.RFC3339))
		case qmp.ReceivedKindReply:
			fmt.Printf("client: reply to #%d (query-status is #%d): %s\n", r.ID, id, r.Response.Return)
		}
	})
	onServer := actiontest.OnDeliver(server, func(cmd qmp.Command) {
		fmt.Println("server: command", cmd.Name, "id", string(cmd.ID))
		_, _ = server.SendEvent("STOP", nil, time.Unix(1700000000, 0))
		_ = server.Return(cmd.ID, []byte(`{"status": "paused", "running": false}`))
	})
	c, s := actiontest.Pump(client, server, onClient, onServer)
	if c.Err() != nil || s.Err() != nil {
		fmt.Println("errors:", c.Err(), s.Err())
	}
	// Output:
	// client: greeted by QEMU 7.2.0
	// client: ready, oob enabled: true
	// server: command query-status id 1
	// client: event STOP 2023-11-14T22:13:20Z
	// client: reply to #1 (query-status is #1): {"status": "paused", "running": false}
}
