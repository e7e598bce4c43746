package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

func TestQEMUOneShot(t *testing.T) {
	q := testpeers.StartQEMU(t)
	addr := "unix:" + q.Socket
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		want     []string // in order
		notWant  string
	}{
		{name: "query-status", args: []string{"-c", "query-status"},
			want: []string{"{\n    \"return\": {\n        \"status\": \"running\",\n        \"singlestep\": false,\n        \"running\": true\n    }\n}\n"}},
		{name: "stop and cont raise STOP and RESUME", args: []string{"-c", "stop", "-c", "cont"},
			want: []string{"event STOP at ", "{\n    \"return\": {}\n}\n", "event RESUME at ", "{\n    \"return\": {}\n}\n"}},
		{name: "unknown command", args: []string{"-c", "no-such-command"}, wantCode: 1,
			want: []string{"\"class\": \"CommandNotFound\",\n        \"desc\": \"The command no-such-command has not been found\""}},
		{name: "bad arguments", stdin: "query-status\nhuman-monitor-command bogus=1\n", wantCode: 1,
			want: []string{"\"status\": \"running\"", "\"class\": \"GenericError\""}},
		{name: "dotted keys build nested objects", args: []string{"-c", "blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=4096", "-c", "blockdev-del node-name=r0"},
			want: []string{"{\n    \"return\": {}\n}\n", "{\n    \"return\": {}\n}\n"}},
		{name: "JSON values reach QEMU", args: []string{"-c", "object-add qom-type=memory-backend-ram id=m0 size=1048576 share=false", "-c", `qom-get path=/objects/m0 property=size`},
			want: []string{"{\n    \"return\": {}\n}\n", "{\n    \"return\": 1048576\n}\n"}},
		{name: "raw JSON keeps its id", args: []string{"-c", `{"execute": "query-name", "id": "mine"}`}, want: []string{"{\n    \"return\": {},\n    \"id\": \"mine\"\n}\n"}},
		{name: "HMP", args: []string{"-H", "-c", "info status"}, want: []string{"VM status: running\n"}},
		{name: "transaction", stdin: "transaction(\n)\n", want: []string{"{\n    \"return\": {}\n}\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runShell(t, tt.stdin, append(append([]string{"-p"}, tt.args...), addr)...)
			require.Equal(t, tt.wantCode, code, "stdout: %s\nstderr: %s", out, errOut)
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				require.GreaterOrEqual(t, i, 0, "want %q in %q", w, out)
				rest = rest[i+len(w):]
			}
			require.Empty(t, errOut)
		})
	}
}

func TestQEMUQuit(t *testing.T) {
	q := testpeers.StartQEMU(t)
	code, out, errOut := runShell(t, "quit\nquery-status\n", "unix:"+q.Socket)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "event SHUTDOWN at ")
	require.Contains(t, out, `"reason": "host-qmp-quit"`)
	require.NotContains(t, out, "running", "nothing runs after quit")
	select {
	case <-q.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("QEMU did not exit after quit")
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a poller.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestQEMUListen(t *testing.T) {
	bin := testpeers.QEMUBinary(t)
	dir, err := os.MkdirTemp("", "qmpl")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp.sock")

	tests := []struct {
		name   string
		listen string
		// qemuAddr turns the address the shell says it waits on into
		// QEMU's -qmp argument (client mode: no server=on).
		qemuAddr func(waitingOn string) string
	}{
		{"unix", "unix:" + sock, func(string) string { return "unix:" + sock }},
		{"tcp", "tcp:127.0.0.1:0", func(w string) string { return "tcp:" + w }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			var errOut lockedBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"--listen", tt.listen, "-c", "query-status", "-c", "quit"}, strings.NewReader(""), &out, &errOut)
			}()
			const waiting = "qmp-shell: waiting for QEMU to connect on "
			var on string
			require.Eventually(t, func() bool {
				s := errOut.String()
				i := strings.Index(s, waiting)
				if i < 0 || !strings.Contains(s[i:], "\n") {
					return false
				}
				on, _, _ = strings.Cut(s[i+len(waiting):], "\n")
				return true
			}, 20*time.Second, 10*time.Millisecond)

			qemu := exec.CommandContext(ctx, bin, "-machine", "none", "-nodefaults", "-display", "none", "-qmp", tt.qemuAddr(on))
			var qemuErr bytes.Buffer
			qemu.Stderr = &qemuErr
			require.NoError(t, qemu.Start())
			code := <-done
			require.NoError(t, qemu.Wait(), qemuErr.String()) // quit made it exit
			require.Equal(t, 0, code, errOut.String())
			require.Contains(t, out.String(), "\"status\": \"running\"")
			require.Contains(t, out.String(), "event SHUTDOWN at ")
		})
	}
}

func TestQMPOverWebSocket(t *testing.T) {
	srv := qmptest.NewServer(qmptest.Config{Name: "ws-vm"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, srv.Start(ctx, "ws://127.0.0.1:0/qmp"))
	defer srv.Close()
	require.True(t, strings.HasPrefix(srv.Addr(), "ws://"), srv.Addr())
	code, out, errOut := runShell(t, "", "-p", "-c", "query-name", "-c", "stop", srv.Addr())
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "{\n    \"return\": {\n        \"name\": \"ws-vm\"\n    }\n}\nevent STOP\n{\n    \"return\": {}\n}\n", timestamps.ReplaceAllString(out, ""))
}
