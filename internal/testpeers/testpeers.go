// Package testpeers is the one home of peer lookup for the tests: it
// finds the real programs the tests talk to — QEMU, Mercurial (a Python
// that imports it), Chromium — and starts QEMU, or skips the test with a
// clear message when one is missing (fails it instead when
// WIREREACTOR_REQUIRE_PEERS=1, as in CI). It imports nothing of the
// project, so any package's tests may use it.
package testpeers

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Required reports whether a missing peer fails tests instead of skipping
// them (WIREREACTOR_REQUIRE_PEERS=1).
func Required() bool { return os.Getenv("WIREREACTOR_REQUIRE_PEERS") == "1" }

// Missing skips t because peer is not installed, or fails it when
// WIREREACTOR_REQUIRE_PEERS=1.
func Missing(t testing.TB, peer, install string) {
	t.Helper()
	if Required() {
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

// StartQEMU starts QEMU with args (none: no machine, "-machine none
// -nodefaults -display none") and a QMP unix socket in server mode, waits
// until the socket accepts connections, and kills QEMU at the end of the
// test.
func StartQEMU(t testing.TB, args ...string) *QEMU {
	t.Helper()
	bin := QEMUBinary(t)
	if len(args) == 0 {
		args = []string{"-machine", "none", "-nodefaults", "-display", "none"}
	}
	dir, err := os.MkdirTemp("", "qmp") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	q := &QEMU{Socket: filepath.Join(dir, "qmp.sock"), done: make(chan struct{})}
	q.cmd = exec.Command(bin, append(args[:len(args):len(args)], "-qmp", "unix:"+q.Socket+",server=on,wait=off")...)
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

// MercurialPython returns a Python 3 interpreter that imports Mercurial
// 6.3 (its wire protocol and CBOR modules), /usr/bin/python3 first, where
// Debian's mercurial package installs them; or skips. The lookup runs once
// per test binary.
func MercurialPython(t testing.TB) string {
	t.Helper()
	py := mercurialPython()
	if py == "" {
		Missing(t, "Mercurial 6.3 (importable by python3)", "apt-get install mercurial")
	}
	return py
}

var mercurialPython = sync.OnceValue(func() string {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		out, err := exec.Command(py, "-c", "from mercurial import util, wireprotoframing; from mercurial.utils import cborutil; print(util.version().decode())").Output()
		if err == nil && bytes.HasPrefix(out, []byte("6.3")) {
			return py
		}
	}
	return ""
})

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
