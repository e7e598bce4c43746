package qmpclient_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// Listen before the command that causes an event, then wait for it: the
// listener queues from the moment it is made, so the STOP event cannot slip
// by between the reply and the wait. Here the peer is qmptest's fake QEMU on
// a temporary unix socket; against a real QEMU only the address changes.
func ExampleClient_Listen() {
	dir, err := os.MkdirTemp("", "qmpclient-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv := qmptest.NewServer(qmptest.Config{Name: "vm1"})
	defer srv.Close()
	if err := srv.Start(ctx, "unix:"+filepath.Join(dir, "qmp.sock")); err != nil {
		fmt.Println(err)
		return
	}

	c := qmpclient.NewClient(qmpclient.Config{Name: "vm1"})
	if err := c.Connect(ctx, srv.Addr()); err != nil {
		fmt.Println(err)
		return
	}
	defer c.Disconnect(ctx)

	stops := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})
	defer stops.Close()
	if _, err := c.Execute(ctx, "stop", nil); err != nil {
		fmt.Println(err)
		return
	}
	ev, err := stops.Next(ctx)
	fmt.Println("event:", ev.Name, err)

	var status struct{ Status string }
	err = c.ExecuteInto(ctx, "query-status", nil, &status)
	fmt.Println("status:", status.Status, err)
	// Output:
	// event: STOP <nil>
	// status: paused <nil>
}

// A command the server refuses is an *ExecuteError: errors.As recovers QMP's
// error class (CommandNotFound, DeviceNotFound, GenericError, …) to act on,
// and the command's name; its message reads like QEMU's.
func ExampleExecuteError() {
	dir, err := os.MkdirTemp("", "qmpclient-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv := qmptest.NewServer(qmptest.Config{})
	defer srv.Close()
	if err := srv.Start(ctx, "unix:"+filepath.Join(dir, "qmp.sock")); err != nil {
		fmt.Println(err)
		return
	}
	c := qmpclient.NewClient(qmpclient.Config{})
	if err := c.Connect(ctx, srv.Addr()); err != nil {
		fmt.Println(err)
		return
	}
	defer c.Disconnect(ctx)

	_, err = c.Execute(ctx, "closefd", map[string]string{"fdname": "nosuch"})
	var execErr *qmpclient.ExecuteError
	if errors.As(err, &execErr) {
		fmt.Println(execErr.Command, "->", execErr.Info.Class)
	}
	fmt.Println(err)
	// Output:
	// closefd -> GenericError
	// qmpclient: closefd failed: GenericError: File descriptor named 'nosuch' not found
}
