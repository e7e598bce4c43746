package main

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// startBridge runs qmp-ws-bridge with args and returns its ws:// base.
func startBridge(t *testing.T, args ...string) string {
	bin := testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-ws-bridge")
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := regexp.MustCompile(`(ws://127\.0\.0\.1:\d+)/vm/`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := addr.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case base := <-found:
		return base
	case <-time.After(20 * time.Second):
		t.Fatal("qmp-ws-bridge did not say where it listens")
		return ""
	}
}

// TestBridgeErrors: what the bridge says when it refuses reaches the user,
// with its status and message.
func TestBridgeErrors(t *testing.T) {
	vm := qmptest.StartUnix(t, qmptest.Config{Name: "vm1"})
	base := startBridge(t, "--token", "s3cret", "--backend", "vm1="+vm.Addr(),
		"--backend", "down=unix:"+filepath.Join(t.TempDir(), "none.qmp"))
	strict := startBridge(t, "--backend", "vm1="+vm.Addr(), "--allow-origin", "https://console.example")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no token", []string{base + "/vm/vm1"},
			[]string{"qmp-shell: connecting to " + base + "/vm/vm1: refused with 401 Unauthorized: missing or wrong bearer token (give --token or set QMP_BRIDGE_TOKEN)"}},
		{"wrong token", []string{"--token", "nope", base + "/vm/vm1"},
			[]string{"401 Unauthorized: missing or wrong bearer token (the bridge refused the token from --token or QMP_BRIDGE_TOKEN)"}},
		{"origin refused", []string{strict + "/vm/vm1"},
			[]string{"403 Forbidden: origin not allowed (the bridge's --allow-origin does not accept http://127.0.0.1:"}},
		{"backend down", []string{"--token", "s3cret", base + "/vm/down"},
			[]string{`the server closed the connection before QMP started, status 1014 "backend down unreachable`}},
		{"no such backend", []string{"--token", "s3cret", base + "/vm/nope"},
			[]string{`404 Not Found: no backend named "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runShell(t, "", append([]string{"-c", "query-status"}, tt.args...)...)
			require.Equal(t, 1, code)
			for _, w := range tt.want {
				require.Contains(t, errOut, w)
			}
			require.NotContains(t, errOut, "bad status")
		})
	}

	code, out, errOut := runShell(t, "", "--token", "s3cret", "-c", "query-name", base+"/vm/vm1")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, `{"return": {"name": "vm1"}}`+"\n", out)

}

// TestBridgeBusy: a second client of a busy backend hears why the bridge
// closed it.
func TestBridgeBusy(t *testing.T) {
	vm := qmptest.StartUnix(t, qmptest.Config{Name: "vm1"})
	base := startBridge(t, "--token", "s3cret", "--backend", "vm1="+vm.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := qmpclient.NewClient(qmpclient.Config{Logger: discardLogger()})
	require.NoError(t, first.ConnectDialer(ctx, ws.Endpoint{URL: base + "/vm/vm1", Header: http.Header{"Authorization": {"Bearer s3cret"}}}))
	defer first.Disconnect(ctx)
	code, _, errOut := runShell(t, "", "--token", "s3cret", "-c", "query-name", base+"/vm/vm1")
	require.Equal(t, 1, code)
	require.Equal(t, "qmp-shell: connecting to "+base+"/vm/vm1: the server closed the connection before QMP started, status 1013 \"busy: backend vm1 already has a client\"\n", errOut)
}
