// Package testpeers starts the real programs the commands' tests talk to —
// QEMU and Chromium — or skips the test with a clear message when they are
// missing (fails it instead when WIREREACTOR_REQUIRE_PEERS=1, as in CI).
package testpeers

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Missing skips t because peer is not installed, or fails it when
// WIREREACTOR_REQUIRE_PEERS=1.
func Missing(t testing.TB, peer, install string) {
	t.Helper()
	if os.Getenv("WIREREACTOR_REQUIRE_PEERS") == "1" {
		t.Fatalf("%s is required (WIREREACTOR_REQUIRE_PEERS=1) but not installed (%s)", peer, install)
	}
	t.Skipf("%s is not installed: skipping (%s)", peer, install)
}

// QEMU is a running qemu-system-x86_64 with a QMP socket.
type QEMU struct {
	// Socket is the QMP socket's path.
	Socket string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
}

// StartQEMU starts QEMU with no machine and a QMP unix socket in server
// mode, waits until the socket accepts connections, and kills QEMU at the
// end of the test.
func StartQEMU(t testing.TB) *QEMU {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		Missing(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	}
	dir, err := os.MkdirTemp("", "qmp") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	q := &QEMU{Socket: filepath.Join(dir, "qmp.sock"), done: make(chan struct{})}
	q.cmd = exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none",
		"-qmp", "unix:"+q.Socket+",server=on,wait=off")
	q.cmd.Stderr = &q.stderr
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = q.cmd.Wait(); close(q.done) }()
	t.Cleanup(q.Kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("unix", q.Socket)
		if err == nil {
			c.Close()
			return q
		}
		select {
		case <-q.done:
			t.Fatalf("QEMU exited before its QMP socket was ready: %s", q.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU's QMP socket %s not ready after 20s: %v", q.Socket, err)
		}
	}
}

// Kill stops QEMU and waits for it.
func (q *QEMU) Kill() {
	_ = q.cmd.Process.Kill()
	<-q.done
}

// Exited reports whether QEMU has exited.
func (q *QEMU) Exited() <-chan struct{} { return q.done }

// QEMUBinary returns the path of qemu-system-x86_64 or skips.
func QEMUBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		Missing(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	}
	return bin
}

// Chromium returns the path of a Chromium binary or skips.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "chromium", "apt-get install chromium")
	return ""
}

// GoBuild builds the main package in dir into the test's temporary
// directory and returns the binary's path.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// Artifacts returns the directory for test artifacts:
// $WIREREACTOR_ARTIFACTS when set, else a temporary directory of the test.
func Artifacts(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("WIREREACTOR_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}
