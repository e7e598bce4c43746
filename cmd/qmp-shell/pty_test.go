package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// openPTY returns a pseudo-terminal's controlling side and its terminal.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	fd := int(ptmx.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}))
	return ptmx, tty
}

// terminal is a running qmp-shell on a pseudo-terminal, seen as a person
// sees it.
type terminal struct {
	t      *testing.T
	ptmx   *os.File
	screen *lockedBuffer
	cmd    *exec.Cmd
	read   chan struct{}
	resume func() // starts reading the terminal
}

func startTerminal(t *testing.T, args ...string) *terminal {
	term := startTerminalPaused(t, args...)
	term.resume()
	return term
}

// startTerminalPaused starts qmp-shell on a terminal that nobody reads
// until resume is called: the program's writes fill the terminal's buffer
// and wait, as on a terminal that scrolls slowly or is stopped (Ctrl-S).
func startTerminalPaused(t *testing.T, args ...string) *terminal {
	bin := testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-shell")
	ptmx, tty := openPTY(t)
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	require.NoError(t, cmd.Start())
	tty.Close()
	term := &terminal{t: t, ptmx: ptmx, screen: &lockedBuffer{}, cmd: cmd, read: make(chan struct{})}
	started := false
	term.resume = func() {
		if started {
			return
		}
		started = true
		go func() {
			defer close(term.read)
			buf := make([]byte, 4096)
			for {
				n, err := ptmx.Read(buf)
				term.screen.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		ptmx.Close()
		term.resume()
		<-term.read
	})
	return term
}

// waitFor waits until the screen shows want after offset from, and returns
// the offset just past it.
func (term *terminal) waitFor(from int, want string) int {
	term.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := term.screen.String()
		if i := strings.Index(s[from:], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal did not show %q; it shows:\n%s", want, s[from:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (term *terminal) typeKeys(s string) {
	term.t.Helper()
	_, err := term.ptmx.Write([]byte(s))
	require.NoError(term.t, err)
}

func TestInteractiveSimulator(t *testing.T) {
	history := filepath.Join(t.TempDir(), "history")
	require.NoError(t, os.WriteFile(history, []byte("query-version\n"), 0o600))
	term := startTerminal(t, "-history", history)

	at := term.waitFor(0, "qmp-shell: no address given; talking to the built-in QMP simulator")
	at = term.waitFor(at, "Connected to QEMU 7.2.0")
	at = term.waitFor(at, "(QEMU) ")

	// Tab completes a unique prefix from query-commands.
	term.typeKeys("query-statu\t")
	at = term.waitFor(at, "query-status ")
	term.typeKeys("\r")
	at = term.waitFor(at, "\"status\": \"running\"")
	at = term.waitFor(at, "(QEMU) ")

	// Events are shown, clearly marked, before the reply.
	term.typeKeys("stop\r")
	at = term.waitFor(at, "event STOP at ")
	at = term.waitFor(at, "\"return\": {}")
	at = term.waitFor(at, "(QEMU) ")

	// Up arrow twice recalls the line before the last one; further up is
	// the history loaded from the file.
	term.typeKeys("\x1b[A\x1b[A\r")
	at = term.waitFor(at, "\"status\": \"paused\"")
	term.typeKeys("\x1b[A\x1b[A\x1b[A\x1b[A\r")
	at = term.waitFor(at, "\"package\": \"wirereactor simulator\"")

	// Errors show class and description.
	term.typeKeys("nope\r")
	at = term.waitFor(at, "\"class\": \"CommandNotFound\"")

	// transaction( switches the prompt.
	term.typeKeys("transaction(\r")
	at = term.waitFor(at, "TRANS> ")
	term.typeKeys(")\r")
	at = term.waitFor(at, "{\"return\": {}}")
	at = term.waitFor(at, "(QEMU) ")

	// Ctrl-D leaves with status 0, on a fresh line: no prompt is drawn
	// again for the user's shell to print after.
	term.typeKeys("\x04")
	waitExit(t, term.cmd, 0)
	<-term.read // the program is gone: everything it wrote has been read
	require.NotContains(t, term.screen.String()[at:], "(QEMU)", "a prompt drawn after Ctrl-D")

	b, err := os.ReadFile(history)
	require.NoError(t, err)
	require.Equal(t, "query-version\nquery-status\nstop\nquery-status\nquery-version\nnope\ntransaction(\n)\n", string(b),
		"typed lines are appended; recalled ones are not repeated in a row")
}

func TestInteractiveQEMU(t *testing.T) {
	q := testpeers.StartQEMU(t)
	term := startTerminal(t, "-history", "", "unix:"+q.Socket)
	at := term.waitFor(0, "Connected to QEMU 7.2.")
	at = term.waitFor(at, "(QEMU) ")
	// query-command-line-options is the only command starting so: a
	// unique completion from QEMU's own query-commands.
	term.typeKeys("query-command-l\t")
	at = term.waitFor(at, "query-command-line-options ")
	term.typeKeys("option=chardev\r")
	at = term.waitFor(at, "\"option\": \"chardev\"")
	term.typeKeys("quit\r")
	term.waitFor(at, "event SHUTDOWN at ")
	waitExit(t, term.cmd, 0)
}

func TestInteractiveQEMUKilled(t *testing.T) {
	q := testpeers.StartQEMU(t)
	term := startTerminal(t, "-history", "", "unix:"+q.Socket)
	at := term.waitFor(0, "(QEMU) ")
	q.Kill()
	at = term.waitFor(at, "qmp-shell: the server closed the connection")
	term.typeKeys("query-status\r")
	term.waitFor(at, "qmp-shell: connection lost")
	waitExit(t, term.cmd, 1)
}

func waitExit(t *testing.T, cmd *exec.Cmd, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		var ee *exec.ExitError
		if want == 0 {
			require.NoError(t, err)
		} else {
			require.True(t, errors.As(err, &ee))
			require.Equal(t, want, ee.ExitCode())
		}
	case <-ctx.Done():
		t.Fatal("qmp-shell did not exit")
	}
}

// TestReadmeCommand runs the program as README.md's first command does,
// without a terminal: with nothing to read it exits at once, cleanly.
func TestReadmeCommand(t *testing.T) {
	bin := testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-shell")
	for _, stdin := range []string{"", "query-status\n"} {
		cmd := exec.Command(bin)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		require.NoError(t, cmd.Start())
		waitExit(t, cmd, 0)
		first, _, _ := strings.Cut(errOut.String(), "\n")
		require.Equal(t, "qmp-shell: no address given; talking to the built-in QMP simulator (a fake QEMU 7.2 in this process)", first)
		if stdin == "" {
			require.Empty(t, out.String())
		} else {
			require.Contains(t, out.String(), "\"status\": \"running\"")
		}
	}
}

func TestInteractiveCompletion(t *testing.T) {
	term := startTerminal(t, "-history", "")
	at := term.waitFor(0, "(QEMU) ")

	// A second Tab on an ambiguous prefix lists the candidates, then shows
	// the prompt and the line again.
	term.typeKeys("query-\t\t")
	at = term.waitFor(at, "query-status")
	at = term.waitFor(at, "query-version")
	at = term.waitFor(at, "(QEMU) query-")

	// Argument names and enum values come from query-qmp-schema.
	term.typeKeys("\x15blockdev-add dri\t")
	at = term.waitFor(at, "driver=")
	term.typeKeys("null-c\t")
	at = term.waitFor(at, "null-co ")
	term.typeKeys("node-name=n0 read-z\t")
	at = term.waitFor(at, "read-zeroes=")
	term.typeKeys("t\t\r")
	at = term.waitFor(at, "true ")
	at = term.waitFor(at, `{"return": {}}`)
	term.typeKeys("query-named-block-nodes\r")
	term.waitFor(at, `"node-name": "n0"`)
}

func TestInteractiveCtrlC(t *testing.T) {
	srv := qmptest.StartUnix(t, qmptest.Config{Name: "vm"})
	srv.Handle("x-slow", qmptest.Slow(time.Second, qmptest.Reply(map[string]bool{"late": true})))
	term := startTerminal(t, "-history", "", srv.Addr())
	at := term.waitFor(0, "(QEMU) ")

	// Ctrl-C at the prompt clears the line; the shell goes on.
	term.typeKeys("stop\x03")
	at = term.waitFor(at, "(QEMU) stop^C")
	at = term.waitFor(at, "(QEMU) ")
	term.typeKeys("query-status\r")
	at = term.waitFor(at, `"status": "running"`)
	at = term.waitFor(at, "(QEMU) ")

	// Ctrl-C while a command runs stops waiting and returns to the
	// prompt; the late reply is dropped, and the next command gets its own.
	term.typeKeys("x-slow\r")
	time.Sleep(200 * time.Millisecond)
	term.typeKeys("\x03")
	at = term.waitFor(at, "qmp-shell: interrupted: stopped waiting for the reply to x-slow (a late reply is dropped)")
	at = term.waitFor(at, "(QEMU) ")
	term.typeKeys("query-name\r")
	at = term.waitFor(at, `{"return": {"name": "vm"}}`)
	term.waitFor(at, "(QEMU) ")
	require.NotContains(t, term.screen.String(), `"late"`, "the late reply is dropped")

	term.typeKeys("\x04")
	waitExit(t, term.cmd, 0)
}

func TestInteractiveHMP(t *testing.T) {
	term := startTerminal(t, "-H", "-history", "")
	at := term.waitFor(0, "Welcome to the HMP shell!")
	at = term.waitFor(at, "(QEMU) ")
	term.typeKeys("info statu\t")
	at = term.waitFor(at, "info status ")
	term.typeKeys("\r")
	at = term.waitFor(at, "VM status: running")
	term.typeKeys("system_\t\t")
	at = term.waitFor(at, "system_powerdown")
	term.waitFor(at, "system_reset")
}

func TestInteractiveEventsOnEnter(t *testing.T) {
	term := startTerminal(t, "--events=enter", "-history", "")
	at := term.waitFor(0, "enter an empty line to see them")
	at = term.waitFor(at, "(QEMU) ")
	term.typeKeys("stop\r")
	at = term.waitFor(at, `{"return": {}}`)
	at = term.waitFor(at, "(QEMU) ")
	require.NotContains(t, term.screen.String(), "event STOP", "held until an empty line")
	term.typeKeys("\r")
	at = term.waitFor(at, "event STOP at ")
	term.waitFor(at, "(QEMU) ")
}

// TestReadmeSession replays the session README.md shows on a terminal:
// each command is typed, and each line shown after it must appear (in any
// order within one command's output: an event that comes right after a
// reply may print before it). Event times are not compared.
func TestReadmeSession(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "<!-- the session below is replayed by TestReadmeSession in cmd/qmp-shell -->\n\n")
	require.True(t, ok, "README.md lost its session marker")
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if l != "" && !strings.HasPrefix(l, "    ") {
			break
		}
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	require.Equal(t, "$ go run ./cmd/qmp-shell", lines[0])
	term := startTerminal(t, "-history", "")
	at := 0
	var block []string // expected lines since the last command
	flush := func() {
		end := at
		for _, want := range block {
			from := at
			for _, part := range timestamps.Split(want, -1) {
				from = term.waitFor(from, part)
			}
			end = max(end, from)
		}
		at, block = end, nil
	}
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "(QEMU) "):
			flush()
			at = term.waitFor(at, "(QEMU) ")
			cmd := strings.TrimPrefix(l, "(QEMU) ")
			term.typeKeys(cmd + "\r")
			at = term.waitFor(at, cmd)
		case l != "":
			block = append(block, l)
		}
	}
	flush()
	term.typeKeys("\x04")
	waitExit(t, term.cmd, 0)
}

// TestInteractiveSlowTerminal: a long reply to a terminal that is not read
// for a while waits for it, and arrives whole; the shell's keyboard reader
// must not leave the terminal (shared with standard output) non-blocking,
// which made such writes fail with EAGAIN.
func TestInteractiveSlowTerminal(t *testing.T) {
	term := startTerminalPaused(t, "-history", "", "-p")
	term.typeKeys("query-qmp-schema\r")
	time.Sleep(time.Second) // the reply (about 190 KB) fills the terminal's buffer
	term.resume()
	at := term.waitFor(0, `"name": "query-status"`)
	at = term.waitFor(at, "\r\n}\r\n(QEMU) ")
	term.typeKeys("query-name\r")
	term.waitFor(at, `"name": "simulator"`)
	require.NotContains(t, term.screen.String(), "resource temporarily unavailable")
	term.typeKeys("\x04")
	waitExit(t, term.cmd, 0)
}
