//go:build unix

package unix_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wirereactor/wirereactor/transport/unix"
)

// Listen on a socket file (created 0600), dial it, and pass a file
// descriptor along with some bytes, as QMP's getfd needs.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ep := unix.Endpoint{Path: filepath.Join(dir, "qmp.sock")}

	ln, err := ep.ListenUnix(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	fi, _ := os.Stat(ep.Path)
	fmt.Println("socket mode:", fi.Mode().Perm())

	client, _ := ep.DialUnix(ctx)
	defer client.Close()
	server, _ := ln.AcceptUnix()
	defer server.Close()

	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	_, _ = client.WriteFDs([]byte(" "), r)

	buf := make([]byte, 1)
	_, _ = io.ReadFull(server, buf)
	files := server.TakeFDs()
	fmt.Println("received descriptors:", len(files))
	_, _ = w.Write([]byte("via the passed pipe"))
	n, _ := files[0].Read(make([]byte, 64))
	fmt.Println("read", n, "bytes through it")
	files[0].Close()
	// Output:
	// socket mode: -rw-------
	// received descriptors: 1
	// read 19 bytes through it
}

// Linux abstract sockets have no file: the name starts with '@'.
func ExampleEndpoint_abstract() {
	ctx := context.Background()
	ln, err := unix.Endpoint{Path: "@wirereactor-example"}.Listen(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	fmt.Println(ln.Addr())
	// Output: @wirereactor-example
}
