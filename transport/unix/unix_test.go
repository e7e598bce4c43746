//go:build unix

package unix_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
	"github.com/wirereactor/wirereactor/transport/unix"
)

func sockPath(t *testing.T) string {
	// Socket paths are limited to ~108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "wr")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// pair returns two connected *unix.Conn.
func pair(t *testing.T, ep unix.Endpoint) (*unix.Conn, *unix.Conn) {
	t.Helper()
	ctx := transporttest.Context(t)
	ln, err := ep.ListenUnix(ctx)
	require.NoError(t, err)
	defer ln.Close()
	type res struct {
		c   *unix.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptUnix()
		ch <- res{c, err}
	}()
	a, err := ep.DialUnix(ctx)
	require.NoError(t, err)
	r := <-ch
	require.NoError(t, r.err)
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a, r.c
}

func TestNetConn(t *testing.T) {
	transporttest.LeakCheck(t)
	for _, ep := range []unix.Endpoint{{Path: "@wirereactor-nettest"}} {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			ep.Path = "@wirereactor-nettest-" + strings.ReplaceAll(t.Name(), "/", "-")
			ln, err := ep.ListenUnix(context.Background())
			if err != nil {
				return nil, nil, nil, err
			}
			return transporttest.MakePipe(ln, func() (net.Conn, error) { return ep.Dial(context.Background()) })
		})
	}
}

func TestSessionOverUnix(t *testing.T) {
	for _, name := range []string{"path", "abstract"} {
		t.Run(name, func(t *testing.T) {
			transporttest.LeakCheck(t)
			ctx := transporttest.Context(t)
			ep := unix.Endpoint{Path: "@wirereactor-test-session"}
			if name == "path" {
				ep.Path = sockPath(t)
			}
			server := transport.New(transport.Config[string, *lenmsg.Machine]{
				Name:       "server",
				NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{Echo: true} },
			})
			client := transport.New(transport.Config[string, *lenmsg.Machine]{
				Name:       "client",
				NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} },
			})
			require.NoError(t, server.StartServer(ctx, ep))
			if name == "path" {
				fi, err := os.Stat(ep.Path)
				require.NoError(t, err)
				require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			}
			acc := make(chan error, 1)
			go func() { acc <- server.Accept(ctx) }()
			require.NoError(t, client.Connect(ctx, ep))
			require.NoError(t, <-acc)

			// A second client finds nobody listening.
			_, err := ep.Dial(ctx)
			require.Error(t, err)

			transporttest.RequireEchoThenCleanClose(t, ctx, server, client)
			if name == "path" {
				_, err := os.Stat(ep.Path)
				require.ErrorIs(t, err, os.ErrNotExist, "the socket file is removed")
			}
		})
	}
}

func TestListenStaleSocket(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx := transporttest.Context(t)
	path := sockPath(t)

	// A socket file left behind by a dead server is replaced.
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, err = os.Stat(path)
	require.NoError(t, err)
	l1, err := unix.Endpoint{Path: path, Mode: 0o660}.Listen(ctx)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), fi.Mode().Perm())

	// A live one is not.
	_, err = unix.Endpoint{Path: path}.Listen(ctx)
	require.ErrorIs(t, err, unix.ErrInUse)
	c, err := unix.Endpoint{Path: path}.Dial(ctx)
	require.NoError(t, err, "the live server still owns the path")
	c.Close()
	l1.Close()

	// A regular file is never removed.
	require.NoError(t, os.WriteFile(path, []byte("data"), 0o600))
	_, err = unix.Endpoint{Path: path}.Listen(ctx)
	require.ErrorContains(t, err, "is not a socket")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "data", string(b))
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestPassFDs(t *testing.T) {
	transporttest.LeakCheck(t)
	a, b := pair(t, unix.Endpoint{Path: sockPath(t)})
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()

	// A payload larger than the socket buffer: sendmsg writes part of it
	// and WriteFDs completes it.
	payload := make([]byte, 8<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() {
		n, err := a.WriteFDs(payload, r)
		if err == nil && n != len(payload) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, len(payload))
	_, err = io.ReadFull(b, got)
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.Equal(t, payload, got)

	files := b.TakeFDs()
	require.Len(t, files, 1)
	defer files[0].Close()
	_, err = w.Write([]byte("through the passed fd"))
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, err := files[0].Read(buf)
	require.NoError(t, err)
	require.Equal(t, "through the passed fd", string(buf[:n]))
	require.Empty(t, b.TakeFDs(), "taken descriptors are forgotten")

	_, err = a.WriteFDs(nil, r)
	require.ErrorIs(t, err, unix.ErrNoData)
}

func TestReceivedFDsBoundedAndClosed(t *testing.T) {
	transporttest.LeakCheck(t)
	before := openFDs(t)
	func() {
		a, b := pair(t, unix.Endpoint{Path: "@wirereactor-fdlimit", MaxFDs: 2})
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		defer w.Close()
		_, err = a.WriteFDs([]byte("x"), r, r, r)
		require.NoError(t, err)
		_, err = io.ReadFull(b, make([]byte, 1))
		require.NoError(t, err)
		require.Equal(t, 1, b.DroppedFDs())
		a.Close()
		b.Close() // closes the two held descriptors
	}()
	require.Equal(t, before, openFDs(t), "no descriptor leaked")
}

func TestSessionPassFDs(t *testing.T) {
	transporttest.LeakCheck(t)
	ctx := transporttest.Context(t)
	ep := unix.Endpoint{Path: sockPath(t)}
	ln, err := ep.ListenUnix(ctx)
	require.NoError(t, err)
	defer ln.Close()
	s := transport.New(transport.Config[string, *lenmsg.Machine]{
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{} },
	})
	require.NoError(t, s.Connect(ctx, ep))
	peer, err := ln.AcceptUnix()
	require.NoError(t, err)
	defer peer.Close()

	f, err := os.Open("/dev/null")
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, s.Do(ctx, func(m *lenmsg.Machine) error { return m.Send([]byte("before")) }))
	require.NoError(t, s.Exec(ctx, unix.PassFDs([]byte{0}, f)))
	require.NoError(t, s.Disconnect(ctx))

	all, err := io.ReadAll(peer)
	require.NoError(t, err)
	require.Equal(t, append(lenmsg.Append(nil, []byte("before")), 0), all)
	files := peer.TakeFDs()
	require.Len(t, files, 1)
	var st1, st2 syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(files[0].Fd()), &st1))
	require.NoError(t, syscall.Stat("/dev/null", &st2))
	require.Equal(t, st2.Rdev, st1.Rdev)
	files[0].Close()
}

func TestReadErrors(t *testing.T) {
	transporttest.LeakCheck(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, a, b *unix.Conn)
		want  error
	}{
		{"deadline", func(t *testing.T, a, b *unix.Conn) {
			require.NoError(t, a.SetReadDeadline(time.Now().Add(-time.Second)))
		}, os.ErrDeadlineExceeded},
		{"closed locally", func(t *testing.T, a, b *unix.Conn) {
			require.NoError(t, a.Close())
		}, net.ErrClosed},
		{"peer closed with unread data", func(t *testing.T, a, b *unix.Conn) {
			_, err := a.Write([]byte("never read"))
			require.NoError(t, err)
			require.NoError(t, b.Close())
		}, syscall.ECONNRESET},
		{"peer closed", func(t *testing.T, a, b *unix.Conn) {
			require.NoError(t, b.Close())
		}, io.EOF},
	}
	for _, tt := range tests {
		for _, fds := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fds expected %v", tt.name, fds), func(t *testing.T) {
				a, b := pair(t, unix.Endpoint{Path: sockPath(t)})
				if fds {
					a.ExpectFDs() // read with recvmsg
				}
				tt.setup(t, a, b)
				n, err := a.Read(make([]byte, 16))
				require.Zero(t, n)
				require.ErrorIs(t, err, tt.want)
				if tt.want != io.EOF {
					var oe *net.OpError
					require.ErrorAs(t, err, &oe)
					require.Equal(t, "read", oe.Op)
				}
			})
		}
	}
}

func TestReadDoesNotAllocate(t *testing.T) {
	transporttest.LeakCheck(t)
	a, b := pair(t, unix.Endpoint{Path: sockPath(t)})
	msg, buf := []byte("ping"), make([]byte, 16)
	for _, fds := range []bool{false, true} {
		if fds {
			a.ExpectFDs()
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := b.Write(msg); err != nil {
				t.Fatal(err)
			}
			if n, err := a.Read(buf); err != nil || n != len(msg) {
				t.Fatal(n, err)
			}
		})
		require.Zero(t, allocs, "fds expected: %v", fds)
	}
}
