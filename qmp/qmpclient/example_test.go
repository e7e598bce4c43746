package qmpclient_test

import (
	"context"
	"fmt"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
)

// The driven client: connect, execute from any goroutine, listen for events.
// (Not run as a test: it needs a QEMU started with
// -qmp unix:/tmp/qmp.sock,server=on,wait=off.)
func ExampleClient() {
	ctx := context.Background()
	c := qmpclient.NewClient(qmpclient.Config{Name: "vm1"})
	if err := c.Connect(ctx, "unix:/tmp/qmp.sock"); err != nil {
		fmt.Println(err)
		return
	}
	defer c.Disconnect(ctx)

	// Listen first, then act, then wait: the event cannot slip by.
	stops := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})
	defer stops.Close()
	if _, err := c.Execute(ctx, "stop", nil); err != nil {
		fmt.Println(err)
		return
	}
	ev, err := stops.Next(ctx)
	fmt.Println(ev.Name, err)

	var status struct{ Status string }
	err = c.ExecuteInto(ctx, "query-status", nil, &status)
	fmt.Println(status.Status, err)
}
