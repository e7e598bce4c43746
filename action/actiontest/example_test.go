package actiontest_test

import (
	"fmt"
	"time"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/qmp"
)

// Drain runs a machine until it wants more input: here, what a QMP client
// machine does with QEMU's greeting.
func ExampleDrain() {
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	c.Feed([]byte(`{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}` + "\n"))
	got := actiontest.Drain(c)
	fmt.Printf("%s", got.Sent())
	for _, r := range got.Delivered() {
		fmt.Println("delivered", r.Kind)
	}
	fmt.Println("error:", got.Err())
	// Output:
	// {"execute": "qmp_capabilities", "id": 1}
	// delivered greeting
	// error: <nil>
}

// Feed hands a machine its input and drains it; with ThenEOF the input then
// ends, and a machine that ended cleanly says so with an io.EOF error.
func ExampleFeed() {
	s := qmp.NewServerMachine(qmp.ServerMachineConfig{})
	got := actiontest.Feed(s, []byte(`{"execute": "qmp_capabilities"}{"execute": "stop", "id": 7}`), actiontest.OneByte())
	for _, cmd := range got.Delivered() {
		fmt.Println("command", cmd.Name, "id", string(cmd.ID))
	}
	// Output:
	// command stop id 7
}

// Pump connects a QMP client machine and a server machine in memory; the
// server's application answers each command from an OnDeliver handler.
func ExamplePump() {
	client := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	server := qmp.NewServerMachine(qmp.ServerMachineConfig{})
	client.Execute("stop", nil) // held by the machine until the handshake is over

	c, _ := actiontest.Pump(client, server, actiontest.OnDeliver(server, func(cmd qmp.Command) {
		server.SendEvent("STOP", nil, time.Unix(1700000000, 0))
		server.Return(cmd.ID, []byte(`{}`))
	}))
	for _, r := range c.Delivered() {
		switch r.Kind {
		case qmp.ReceivedKindEvent:
			fmt.Println("client: event", r.Event.Name)
		case qmp.ReceivedKindReply:
			fmt.Printf("client: reply to #%d %s\n", r.ID, r.Response.Return)
		default:
			fmt.Println("client:", r.Kind)
		}
	}
	// Output:
	// client: greeting
	// client: ready
	// client: event STOP
	// client: reply to #1 {}
}

// Splits runs one exchange once per way of cutting its input: whole, one
// byte at a time, and in two at every offset. A machine must not care.
func ExampleSplits() {
	input := []byte(`{"execute": "qmp_capabilities"}{"execute": "cont"}`)
	results := map[string]int{}
	for _, cut := range actiontest.Splits(len(input)) {
		got := actiontest.Feed(qmp.NewServerMachine(qmp.ServerMachineConfig{}), input, cut)
		results[fmt.Sprintf("%d commands, %d bytes sent", len(got.Delivered()), len(got.Sent()))]++
	}
	fmt.Println(results)
	// Output:
	// map[1 commands, 137 bytes sent:51]
}

// Poison hands a driver under test a machine whose Send bytes turn to
// garbage at the next call, as the action contract allows: a driver that
// keeps them instead of writing or copying them at once is caught.
func ExamplePoison() {
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	c.Feed([]byte(`{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}` + "\n"))

	// A broken driver keeps the Send bytes and writes them later.
	m := actiontest.Poison[qmp.Received](c)
	var kept []byte
	for a := m.Next(); a.Kind != action.KindWantMore; a = m.Next() {
		if a.Kind == action.KindSend {
			kept = a.Bytes
		}
	}
	fmt.Printf("%q\n", kept[:8])
	// Output:
	// "\xde\xde\xde\xde\xde\xde\xde\xde"
}
