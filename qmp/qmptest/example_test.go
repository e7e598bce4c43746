package qmptest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// A fake QEMU on a unix socket, a scripted command, and a qmpclient.Client
// talking to it.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	srv := qmptest.NewServer(qmptest.Config{Name: "vm1"})
	defer srv.Close()
	srv.Handle("device_add", func(ctx context.Context, args json.RawMessage) (any, error) {
		var dev struct{ ID string }
		if err := json.Unmarshal(args, &dev); err != nil {
			return nil, err
		}
		if dev.ID == "" {
			return nil, qmptest.Errorf("GenericError", "Parameter 'id' is missing")
		}
		// Sent after the reply, as a hot-plug completes later.
		return nil, qmptest.EmitAfter(ctx, "DEVICE_ADDED", map[string]string{"device": dev.ID})
	})
	ctx := context.Background()
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
	added := c.Listen(qmpclient.ListenOptions{Names: []string{"DEVICE_ADDED"}})

	_, err := c.Execute(ctx, "device_add", map[string]string{"driver": "virtio-net-pci", "id": "net0"})
	fmt.Println("device_add:", err)
	ev, _ := added.Next(ctx)
	fmt.Println("event:", ev.Name, string(ev.Data))

	_, err = c.Execute(ctx, "device_add", map[string]string{"driver": "virtio-net-pci"})
	fmt.Println("device_add:", err)

	_, err = c.Execute(ctx, "stop", nil)
	fmt.Println("stop:", err, "- status now", srv.Status())

	_, err = c.Execute(ctx, "migrate", nil)
	fmt.Println("migrate:", err)
	// Output:
	// device_add: <nil>
	// event: DEVICE_ADDED {"device":"net0"}
	// device_add: qmpclient: device_add failed: GenericError: Parameter 'id' is missing
	// stop: <nil> - status now paused
	// migrate: qmpclient: migrate failed: CommandNotFound: The command migrate has not been found
}
