package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/cmd/internal/testpeers"
	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transport/ws"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serveBridge serves a bridge for cfg on a loopback HTTP server, closed
// when t ends, and returns its http:// base URL.
func serveBridge(t *testing.T, cfg Config) (string, *Bridge) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := NewBridge(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(b)
	t.Cleanup(func() {
		srv.Close()
		b.Close()
	})
	return srv.URL, b
}

// startBridge is serveBridge returning the ws:// base URL.
func startBridge(t *testing.T, cfg Config) (string, *Bridge) {
	t.Helper()
	base, b := serveBridge(t, cfg)
	return "ws" + strings.TrimPrefix(base, "http"), b
}

func connectQMP(t *testing.T, ep ws.Endpoint) (*qmp.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := qmp.NewClient(qmp.Config{Logger: slog.New(slog.DiscardHandler)})
	if err := c.ConnectDialer(ctx, ep); err != nil {
		return nil, err
	}
	return c, nil
}

func queryStatus(t *testing.T, c *qmp.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var st struct{ Status string }
	require.NoError(t, c.ExecuteInto(ctx, "query-status", nil, &st))
	return st.Status
}

func TestBridgeQEMU(t *testing.T) {
	q := testpeers.StartQEMU(t)
	base, _ := startBridge(t, Config{Backends: map[string]string{"vm1": "unix:" + q.Socket}})
	ep := ws.Endpoint{URL: base + "/vm/vm1"}

	first, err := connectQMP(t, ep)
	require.NoError(t, err)
	require.Equal(t, 7, first.Greeting().Version.QEMU.Major)
	require.Equal(t, "running", queryStatus(t, first))

	// Events pass through.
	events := first.Listen(qmp.ListenOptions{Names: []string{"STOP"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = first.Execute(ctx, "stop", nil)
	require.NoError(t, err)
	ev, err := events.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "STOP", ev.Name)
	events.Close()

	// A second client is told the backend is busy, at once.
	start := time.Now()
	_, err = connectQMP(t, ep)
	require.Error(t, err)
	require.Contains(t, err.Error(), `1013 "busy: backend vm1 already has a client"`)
	require.Less(t, time.Since(start), 5*time.Second)

	// The first client is unaffected, and once it leaves the next one
	// gets in and sees QEMU as the first left it.
	require.Equal(t, "paused", queryStatus(t, first))
	require.NoError(t, first.Disconnect(context.Background()))
	var second *qmp.Client
	require.Eventually(t, func() bool {
		second, err = connectQMP(t, ep)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "paused", queryStatus(t, second))
	_, err = second.Execute(ctx, "cont", nil)
	require.NoError(t, err)
	require.NoError(t, second.Disconnect(context.Background()))
}

func TestBridgeQMPShell(t *testing.T) {
	q := testpeers.StartQEMU(t)
	base, _ := startBridge(t, Config{Backends: map[string]string{"vm1": "unix:" + q.Socket}, Token: "s3cret"})
	shell := testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-shell")

	tests := []struct {
		name  string
		token string
		code  int
		out   string
		err   string
	}{
		{"with the token", "s3cret", 0, "\"status\": \"running\"", ""},
		{"without the token", "", 1, "", "qmp-shell: connect"},
		{"with a wrong token", "guess", 1, "", "qmp-shell: connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(shell, "-c", "query-status", base+"/vm/vm1")
			cmd.Env = append(os.Environ(), "QMP_BRIDGE_TOKEN="+tt.token)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			if tt.code == 0 {
				require.NoError(t, err, errOut.String())
			} else {
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee)
				require.Equal(t, tt.code, ee.ExitCode())
			}
			require.Contains(t, out.String(), tt.out)
			require.Contains(t, errOut.String(), tt.err)
		})
	}
}

func TestBridgeHTTPErrors(t *testing.T) {
	q := testpeers.StartQEMU(t)
	dead := filepath.Join(t.TempDir(), "nobody.sock")
	base, _ := startBridge(t, Config{
		Backends:       map[string]string{"vm1": "unix:" + q.Socket, "gone": "unix:" + dead},
		Token:          "tok",
		AllowedOrigins: []string{"https://console.example"},
	})
	httpBase := "http" + strings.TrimPrefix(base, "ws")
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		body   string
	}{
		{"unknown backend", "/vm/nope", nil, http.StatusNotFound, `no backend named "nope"`},
		{"no token", "/vm/vm1", nil, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"wrong token", "/vm/vm1?access_token=x", nil, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"origin not allowed", "/vm/vm1?access_token=tok", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, "origin not allowed"},
		{"backend down", "/vm/gone", http.Header{"Authorization": {"Bearer tok"}}, http.StatusBadGateway, "backend gone unreachable"},
		{"no console unless asked", "/", nil, http.StatusNotFound, "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", httpBase+tt.path, nil)
			require.NoError(t, err)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode)
			require.Contains(t, string(body), tt.body)
		})
	}

	// The allowed origin with the token gets through.
	c, err := connectQMP(t, ws.Endpoint{URL: base + "/vm/vm1?access_token=tok", Origin: "https://console.example"})
	require.NoError(t, err)
	require.Equal(t, "running", queryStatus(t, c))
	require.NoError(t, c.Disconnect(context.Background()))
}

func TestNewBridgeErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no backends"},
		{Config{Backends: map[string]string{"a/b": "unix:/x"}}, `backend name "a/b"`},
		{Config{Backends: map[string]string{"a": "/x"}}, `backend a: address "/x": want unix:/path or tcp:host:port`},
	}
	for _, tt := range tests {
		_, err := NewBridge(tt.cfg)
		require.ErrorContains(t, err, tt.want)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, pool, err := testcert.NewPEM()
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	return certFile, keyFile, pool
}

// runningBridge is the qmp-ws-bridge program running as a process.
type runningBridge struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.b.String()
}

// startProgram runs the bridge binary and waits for its first URL line.
func startProgram(t *testing.T, args ...string) (*runningBridge, string) {
	t.Helper()
	bin := testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-ws-bridge")
	rb := &runningBridge{cmd: exec.Command(bin, append([]string{"--listen", "127.0.0.1:0"}, args...)...),
		stdout: newLockedBuffer(), stderr: newLockedBuffer(), done: make(chan error, 1)}
	rb.cmd.Stdout, rb.cmd.Stderr = rb.stdout, rb.stderr
	require.NoError(t, rb.cmd.Start())
	go func() { rb.done <- rb.cmd.Wait() }()
	t.Cleanup(func() {
		_ = rb.cmd.Process.Kill()
		<-rb.done
	})
	var host string
	require.Eventually(t, func() bool {
		out := rb.stdout.String()
		i := strings.Index(out, "://")
		if i < 0 {
			return false
		}
		rest := out[i+3:]
		host = rest[:strings.Index(rest, "/")]
		return true
	}, 20*time.Second, 10*time.Millisecond, "no URL printed; stderr: %s", rb.stderr.String())
	return rb, host
}

func TestProgramTLSAndSignals(t *testing.T) {
	q := testpeers.StartQEMU(t)
	certFile, keyFile, pool := selfSigned(t)
	rb, host := startProgram(t, "--backend", "vm1=unix:"+q.Socket, "--tls-cert", certFile, "--tls-key", keyFile)
	require.Contains(t, rb.stdout.String(), "qmp-ws-bridge: wss://"+host+"/vm/vm1 -> unix:"+q.Socket)

	c, err := connectQMP(t, ws.Endpoint{URL: "wss://" + host + "/vm/vm1", TLS: &tls.Config{RootCAs: pool}})
	require.NoError(t, err)
	require.Equal(t, "running", queryStatus(t, c))

	// qmp-shell through wss://, trusting the bridge's certificate.
	shell := exec.Command(testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-shell"),
		"--tls-ca", certFile, "-c", "query-name", "wss://"+host+"/vm/vm1")
	// The backend is busy with c: the shell is told so and fails.
	out, err := shell.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `status 1013 "busy: backend vm1 already has a client"`)

	// SIGTERM: the client is disconnected (with a close frame), the
	// program stops cleanly.
	require.NoError(t, rb.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-rb.done:
		rb.done <- err // for the cleanup
		require.NoError(t, err, rb.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge did not stop on SIGTERM")
	}
	require.Contains(t, rb.stdout.String(), "qmp-ws-bridge: stopped")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Execute(ctx, "query-status", nil)
	require.ErrorIs(t, err, qmp.ErrDisconnected)
	_ = c.Disconnect(context.Background())

	// QEMU is free for the next client.
	direct := qmp.NewClient(qmp.Config{Logger: slog.New(slog.DiscardHandler)})
	require.Eventually(t, func() bool { return direct.Connect(ctx, "unix:"+q.Socket) == nil }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "running", queryStatus(t, direct))
	require.NoError(t, direct.Disconnect(context.Background()))
}

func TestProgramQMPShellWSS(t *testing.T) {
	q := testpeers.StartQEMU(t)
	certFile, keyFile, _ := selfSigned(t)
	_, host := startProgram(t, "--backend", "vm1=unix:"+q.Socket, "--tls-cert", certFile, "--tls-key", keyFile)
	shell := testpeers.GoBuild(t, "github.com/wirereactor/wirereactor/cmd/qmp-shell")

	out, err := exec.Command(shell, "--tls-ca", certFile, "-c", "query-status", "wss://"+host+"/vm/vm1").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), `"status": "running"`)

	// Without trusting the certificate the connection is refused.
	out, err = exec.Command(shell, "-c", "query-status", "wss://"+host+"/vm/vm1").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "certificate")
}

func TestProgramFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "no backends"},
		{[]string{"--backend", "novalue"}, 2, `--backend "novalue": want NAME=ADDRESS`},
		{[]string{"--backend", "a=unix:/x", "--backend", "a=unix:/y"}, 2, `backend "a" given twice`},
		{[]string{"--backend", "a=unix:/x", "--tls-cert", "c.pem"}, 2, "--tls-cert and --tls-key go together"},
		{[]string{"--backend", "a=unix:/x", "extra"}, 2, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errOut)
		require.Equal(t, tt.code, code, tt.args)
		require.Contains(t, errOut.String(), tt.want)
	}
}
