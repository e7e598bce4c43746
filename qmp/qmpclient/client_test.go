package qmpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp"
)

// qemuProcess runs QEMU with a QMP unix socket in server mode and returns the
// socket's address and the process. It skips without QEMU unless
// WIREREACTOR_REQUIRE_PEERS=1.
func qemuProcess(t *testing.T, machineArgs ...string) (string, *exec.Cmd) {
	t.Helper()
	bin := testpeers.QEMUBinary(t)
	if len(machineArgs) == 0 {
		machineArgs = []string{"-machine", "none"}
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	args := append(machineArgs, "-nodefaults", "-display", "none", "-qmp", "unix:"+sock+",server=on,wait=off")
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
	}
	return "unix:" + sock, cmd
}

func connectClient(t *testing.T, addr string) *Client {
	t.Helper()
	c := NewClient(Config{Name: t.Name()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil { // QEMU may not listen yet
		if err = c.Connect(ctx, addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func TestDrivenClientAgainstQEMU(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	require.Equal(t, 7, c.Greeting().Version.QEMU.Major)
	var status struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	require.NoError(t, c.ExecuteInto(ctx, "query-status", nil, &status))
	require.Equal(t, "running", status.Status)

	// The 207 KB reply that breaks 64 KiB line readers.
	schema, err := c.Execute(ctx, "query-qmp-schema", nil)
	require.NoError(t, err)
	require.Greater(t, len(schema), 150_000)

	_, err = c.Execute(ctx, "no-such-command", nil)
	var ee *ExecuteError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "CommandNotFound", ee.Info.Class)
	require.Equal(t, "no-such-command", ee.Command)

	_, err = c.Execute(ctx, "query-name", map[string]int{"x": 1})
	require.ErrorAs(t, err, &ee)
	require.Equal(t, qmp.ErrorInfo{Class: "GenericError", Desc: "Parameter 'x' is unexpected"}, ee.Info)
	require.JSONEq(t, `{"x": 1}`, string(ee.Arguments))

	require.NoError(t, c.Disconnect(ctx))
}

func TestDrivenClientPipelinesFromManyGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Every reply names its caller's device: a reply handed to the wrong
	// caller (go-qemu did that) shows at once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 125 {
				dev := fmt.Sprintf("dev-%d-%d", g, i)
				_, err := c.Execute(ctx, "device_del", map[string]string{"id": dev})
				var ee *ExecuteError
				if !errors.As(err, &ee) {
					errs <- fmt.Errorf("%s: %v", dev, err)
					return
				}
				if want := fmt.Sprintf("Device '%s' not found", dev); ee.Info.Desc != want {
					errs <- fmt.Errorf("caller %s got the reply %q", dev, ee.Info.Desc)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.NoError(t, c.Disconnect(ctx))
}

func TestDrivenClientEvents(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t, "-machine", "pc", "-accel", "tcg", "-S")
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A handler that executes a command on the same client when an event
	// arrives (go-qemu and govmm deadlock here): resume on every STOP.
	stops := c.Listen(ListenOptions{Names: []string{"STOP"}})
	handlerDone := make(chan error, 1)
	go func() {
		ev, err := stops.Next(ctx)
		if err == nil {
			_, err = c.Execute(ctx, "cont", nil)
			_ = ev
		}
		handlerDone <- err
	}()
	resumes := c.Listen(ListenOptions{Names: []string{"RESUME"}})
	defer resumes.Close()

	_, err := c.Execute(ctx, "cont", nil)
	require.NoError(t, err)
	ev, err := resumes.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "RESUME", ev.Name)

	_, err = c.Execute(ctx, "stop", nil)
	require.NoError(t, err)
	require.NoError(t, <-handlerDone)
	ev, err = resumes.Next(ctx)
	require.NoError(t, err, "the handler's cont resumed the guest")
	require.Equal(t, "RESUME", ev.Name)
	stops.Close()

	// quit: SHUTDOWN, the reply, then the connection closes.
	shutdown := c.Listen(ListenOptions{Names: []string{"SHUTDOWN"}})
	_, err = c.Execute(ctx, "quit", nil)
	require.NoError(t, err)
	ev, err = shutdown.Next(ctx)
	require.NoError(t, err)
	var data struct{ Reason string }
	require.NoError(t, json.Unmarshal(ev.Data, &data))
	require.Equal(t, "host-qmp-quit", data.Reason)
	_, err = shutdown.Next(ctx)
	require.ErrorIs(t, err, ErrDisconnected, "the listener ends with the session")
	_, err = c.Execute(ctx, "query-status", nil)
	require.Error(t, err)
}

func TestDrivenClientQEMUKilled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, cmd := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	failed := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := c.Execute(ctx, "query-status", nil); err != nil {
					failed <- err
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, cmd.Process.Kill())
	wg.Wait() // every execute returns: none hangs
	close(failed)
	for err := range failed {
		require.ErrorIs(t, err, ErrDisconnected)
	}
	require.Error(t, c.Disconnect(ctx), "the root cause is reported")
}

func TestDrivenClientReconnects(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
	first := c.lastID.Load()
	require.NoError(t, c.Disconnect(ctx))

	require.NoError(t, c.Connect(ctx, addr))
	_, err = c.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
	require.Greater(t, c.lastID.Load(), first+1, "ids keep counting across connections")
	require.NoError(t, c.Disconnect(ctx))
}

func TestDrivenClientCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Execute(ctx, "query-status", nil)
	require.ErrorIs(t, err, context.Canceled)
	ok, err := c.Execute(context.Background(), "query-status", nil)
	require.NoError(t, err)
	require.NotEmpty(t, ok)
	require.NoError(t, c.Disconnect(context.Background()))
}

func TestDrivenClientPassesFilesToQEMU(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()

	_, err = c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "fd0"}, w)
	require.NoError(t, err)
	_, err = c.Execute(ctx, "closefd", map[string]string{"fdname": "fd0"})
	require.NoError(t, err, "QEMU holds the descriptor we passed")

	var added struct {
		FDSetID int `json:"fdset-id"`
		FD      int `json:"fd"`
	}
	raw, err := c.ExecuteWithFiles(ctx, "add-fd", map[string]any{"fdset-id": 7, "opaque": "pipe"}, r)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &added))
	require.Equal(t, 7, added.FDSetID)
	var sets []struct {
		FDSetID int `json:"fdset-id"`
		FDs     []struct {
			FD     int    `json:"fd"`
			Opaque string `json:"opaque"`
		} `json:"fds"`
	}
	require.NoError(t, c.ExecuteInto(ctx, "query-fdsets", nil, &sets))
	require.Len(t, sets, 1)
	require.Equal(t, 7, sets[0].FDSetID)
	require.Equal(t, added.FD, sets[0].FDs[0].FD)
	require.Equal(t, "pipe", sets[0].FDs[0].Opaque)
	require.NoError(t, c.Disconnect(ctx))
}

func TestDrivenClientReverseMode(t *testing.T) {
	// Listen first, start QEMU as the connecting side, then accept.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bin := testpeers.QEMUBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "rev.sock")
	c := NewClient(Config{Name: "reverse"})
	require.NoError(t, c.StartServer(ctx, "unix:"+sock))
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "unix:"+sock)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.NoError(t, c.Accept(ctx))
	var status struct{ Status string }
	require.NoError(t, c.ExecuteInto(ctx, "query-status", nil, &status))
	require.Equal(t, "running", status.Status)
	require.NoError(t, c.Disconnect(ctx))
}

func TestDrivenClientOverTCP(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bin := testpeers.QEMUBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "tcp:"+addr+",server=on,wait=off")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := connectClient(t, "tcp:"+addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := c.Execute(ctx, "query-version", nil)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"qemu"`)
	require.NoError(t, c.Disconnect(ctx))
}

func TestDescriptorGoesToItsCommandQEMU(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, _ := qemuProcess(t)
	c := connectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("with-%d", i)
			if _, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": name}, w); err != nil {
				errs <- fmt.Errorf("ExecuteWithFiles %s: %w", name, err)
			}
		}()
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("plain-%d", i)
			_, err := c.Execute(ctx, "getfd", map[string]string{"fdname": name})
			var ee *ExecuteError
			if !errors.As(err, &ee) || ee.Info.Desc != "No file descriptor supplied via SCM_RIGHTS" {
				errs <- fmt.Errorf("plain getfd %s took a descriptor (err %v)", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	require.Zero(t, failed, "descriptors that went to the wrong command")
	require.NoError(t, c.Disconnect(ctx))
}

func TestExecuteWithFilesOverTCPFailsAloneQEMU(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bin := testpeers.QEMUBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "tcp:"+addr+",server=on,wait=off")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := connectClient(t, "tcp:"+addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "x"}, os.Stdin)
	require.ErrorIs(t, err, ErrFilesUnsupported)
	_, err = c.Execute(ctx, "query-status", nil)
	require.NoError(t, err, "the session keeps running")
	require.NoError(t, c.Disconnect(ctx))
}
