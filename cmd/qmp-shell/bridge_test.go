package main

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/cmd/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp"
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

// TestBridgeBusy: a second client of a busy backend hears why the bridge
// closed it.
func TestBridgeBusy(t *testing.T) {
	vm := qmptest.StartUnix(t, qmptest.Config{Name: "vm1"})
	base := startBridge(t, "--token", "s3cret", "--backend", "vm1="+vm.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := qmp.NewClient(qmp.Config{Logger: discardLogger()})
	require.NoError(t, first.ConnectDialer(ctx, ws.Endpoint{URL: base + "/vm/vm1", Header: http.Header{"Authorization": {"Bearer s3cret"}}}))
	defer first.Disconnect(ctx)
	code, _, errOut := runShell(t, "", "--token", "s3cret", "-c", "query-name", base+"/vm/vm1")
	require.Equal(t, 1, code)
	require.Equal(t, "qmp-shell: "+base+"/vm/vm1 closed the connection before QMP started: status 1013: busy: backend vm1 already has a client\n", errOut)
}
