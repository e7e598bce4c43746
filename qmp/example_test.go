package qmp_test

import (
	"fmt"
	"time"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/qmp"
)

// A client machine and a server machine talking through memory: no socket,
// no goroutine. The loop is what a transport does for real.
func Example() {
	client := qmp.NewClientMachine(qmp.ClientConfig{})
	server := qmp.NewServerMachine(qmp.ServerConfig{})
	var toServer, toClient []byte

	id, _ := client.Execute("query-status", nil) // held until the handshake is over
	for range 10 {
		for a := client.Next(); a.Kind != action.WantMore; a = client.Next() {
			switch a.Kind {
			case action.Send:
				toServer = append(toServer, a.Bytes...)
			case action.Deliver:
				r := a.Value
				switch r.Kind {
				case qmp.KindGreeting:
					fmt.Println("client: greeted by QEMU", r.Greeting.Version.QEMU)
				case qmp.KindReady:
					fmt.Println("client: ready, oob enabled:", client.OOBEnabled())
				case qmp.KindEvent:
					fmt.Println("client: event", r.Event.Name, r.Event.Timestamp.UTC().Format(time.RFC3339))
				case qmp.KindReply:
					fmt.Printf("client: reply to #%d (query-status is #%d): %s\n", r.ID, id, r.Response.Return)
				}
			case action.Error:
				fmt.Println("client error:", a.Err)
				return
			}
		}
		server.Feed(toServer)
		for a := server.Next(); a.Kind != action.WantMore; a = server.Next() {
			switch a.Kind {
			case action.Send:
				toClient = append(toClient, a.Bytes...)
			case action.Deliver:
				cmd := a.Value
				fmt.Println("server: command", cmd.Name, "id", string(cmd.ID))
				_, _ = server.SendEvent("STOP", nil, time.Unix(1700000000, 0))
				_ = server.Return(cmd.ID, []byte(`{"status": "paused", "running": false}`))
			case action.Error:
				fmt.Println("server error:", a.Err)
				return
			}
		}
		toServer = toServer[:0]
		client.Feed(toClient)
		toClient = nil
	}
	// Output:
	// client: greeted by QEMU 7.2.0
	// client: ready, oob enabled: true
	// server: command query-status id 1
	// client: event STOP 2023-11-14T22:13:20Z
	// client: reply to #1 (query-status is #1): {"status": "paused", "running": false}
}
