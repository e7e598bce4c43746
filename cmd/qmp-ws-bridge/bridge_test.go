package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
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

	"github.com/wirereactor/wirereactor/internal/testcert"
	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
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

func connectQMP(t *testing.T, ep ws.Endpoint) (*qmpclient.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := qmpclient.NewClient(qmpclient.Config{Logger: slog.New(slog.DiscardHandler)})
	if err := c.ConnectDialer(ctx, ep); err != nil {
		return nil, err
	}
	return c, nil
}

func queryStatus(t *testing.T, c *qmpclient.Client) string {
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
	events := first.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})
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
	var second *qmpclient.Client
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
		// The token comes first: without it, no backend name is revealed.
		{"unknown backend without the token", "/vm/nope", nil, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"unknown backend", "/vm/nope?access_token=tok", nil, http.StatusNotFound, `no backend named "nope"`},
		{"no token", "/vm/vm1", nil, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"wrong token", "/vm/vm1?access_token=x", nil, http.StatusUnauthorized, "missing or wrong bearer token"},
		{"origin not allowed", "/vm/vm1?access_token=tok", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, "origin not allowed"},
		{"not a WebSocket request", "/vm/gone", http.Header{"Authorization": {"Bearer tok"}}, http.StatusBadRequest, "/vm/gone is a WebSocket endpoint: connect with a WebSocket client"},
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

	// A backend that cannot be reached is reported after the upgrade, with
	// status 1014 and the reason (a browser never sees an HTTP error's).
	down, err := ws.Endpoint{URL: base + "/vm/gone", Origin: "https://console.example", Header: http.Header{"Authorization": {"Bearer tok"}}}.DialWS(context.Background())
	require.NoError(t, err)
	_, err = down.Read(make([]byte, 1))
	var ce *ws.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, uint16(ws.CloseBadGateway), ce.Code)
	require.Contains(t, ce.Reason, "backend gone unreachable: ")
	require.NoError(t, down.Close())

	// Through qmpclient.Client, a refusal reaches the caller typed, with the
	// bridge's status and message (before: "websocket: handshake: bad
	// status").
	_, err = connectQMP(t, ws.Endpoint{URL: base + "/vm/vm1", Origin: "https://console.example"})
	var he *ws.HandshakeError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusUnauthorized, he.StatusCode)
	require.Equal(t, "missing or wrong bearer token", strings.TrimSpace(he.Body))
	require.ErrorContains(t, err, "ws: handshake refused: 401 Unauthorized: missing or wrong bearer token")

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
		{Config{Backends: map[string]string{"a": "vm1.qmp"}}, `backend a: endpoint: address "vm1.qmp" is none of unix:PATH, tcp:HOST:PORT, ws://HOST/PATH, wss://HOST/PATH`},
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
	require.ErrorIs(t, err, qmpclient.ErrDisconnected)
	_ = c.Disconnect(context.Background())

	// QEMU is free for the next client.
	direct := qmpclient.NewClient(qmpclient.Config{Logger: slog.New(slog.DiscardHandler)})
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

// fakeBackend is a TCP listener standing for a QMP socket: it counts the
// connections it accepts and sends a greeting on each.
type fakeBackend struct {
	ln    net.Listener
	conns chan net.Conn
}

func newFakeBackend(t *testing.T) *fakeBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fb := &fakeBackend{ln: ln, conns: make(chan net.Conn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}`+"\r\n")
			fb.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(fb.conns)
		for c := range fb.conns {
			c.Close()
		}
	})
	return fb
}

func (fb *fakeBackend) addr() string { return "tcp:" + fb.ln.Addr().String() }

// A request with a valid token that is not a WebSocket upgrade never
// opens the backend (QEMU's single monitor): before, the bridge dialed
// first and upgraded after.
func TestBridgeDialsOnlyAfterUpgrade(t *testing.T) {
	fb := newFakeBackend(t)
	base, _ := serveBridge(t, Config{Backends: map[string]string{"vm1": fb.addr()}, Token: "tok"})
	for _, h := range []http.Header{
		{},
		{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, // no key, no version
		{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Protocol": {"text"}},
	} {
		req, err := http.NewRequest("GET", base+"/vm/vm1?access_token=tok", nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.NotEqual(t, http.StatusSwitchingProtocols, resp.StatusCode)
		// Any dial would have been accepted by the kernel before the
		// answer was written.
		select {
		case <-fb.conns:
			t.Fatalf("the backend was dialed for a request that is not an upgrade: %v", h)
		default:
		}
	}
	// A real upgrade does reach it (once the last refused request has
	// released the backend: its handler may still be returning).
	require.Eventually(t, func() bool {
		c, err := ws.Endpoint{URL: "ws" + strings.TrimPrefix(base, "http") + "/vm/vm1?access_token=tok"}.DialWS(context.Background())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	select {
	case <-fb.conns:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend was not dialed after the upgrade")
	}
}

// The default same-origin rule compares the scheme: a page served over
// https cannot use an http bridge on the same host and port.
func TestBridgeSameOriginScheme(t *testing.T) {
	fb := newFakeBackend(t)
	base, _ := startBridge(t, Config{Backends: map[string]string{"vm1": fb.addr()}})
	host := strings.TrimPrefix(base, "ws://")
	_, err := ws.Endpoint{URL: base + "/vm/vm1", Origin: "https://" + host}.DialWS(context.Background())
	var he *ws.HandshakeError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusForbidden, he.StatusCode)
	require.Equal(t, "origin not allowed", strings.TrimSpace(he.Body))

	c, err := ws.Endpoint{URL: base + "/vm/vm1", Origin: "http://" + host}.DialWS(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// With IdleTimeout a client that sends nothing is closed (1008, with the
// reason) and the backend released; one that keeps sending stays.
func TestBridgeIdleTimeout(t *testing.T) {
	fb := newFakeBackend(t)
	const idle = 300 * time.Millisecond
	base, _ := startBridge(t, Config{Backends: map[string]string{"vm1": fb.addr()}, IdleTimeout: idle})
	ep := ws.Endpoint{URL: base + "/vm/vm1"}

	// Active: a byte every idle/6 for 4×idle.
	active, err := ep.DialWS(context.Background())
	require.NoError(t, err)
	backend := <-fb.conns
	for i := 0; i < 24; i++ {
		_, err := active.Write([]byte(" "))
		require.NoError(t, err)
		time.Sleep(idle / 6)
	}
	got := make([]byte, 24)
	_ = backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadFull(backend, got)
	require.NoError(t, err, "the active client was cut off")
	require.NoError(t, active.Close())
	require.Eventually(t, func() bool {
		_ = backend.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err := backend.Read(got)
		return errors.Is(err, io.EOF)
	}, 10*time.Second, 20*time.Millisecond)

	// Silent: closed with 1008, backend connection closed, and the next
	// client gets in.
	var silent *ws.Conn
	require.Eventually(t, func() bool {
		silent, err = ep.DialWS(context.Background())
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	backend = <-fb.conns
	start := time.Now()
	_, err = io.ReadAll(silent)
	var ce *ws.CloseError
	require.ErrorAs(t, err, &ce)
	require.GreaterOrEqual(t, time.Since(start), idle-50*time.Millisecond)
	require.Equal(t, uint16(ws.ClosePolicyViolation), ce.Code)
	require.Equal(t, "idle for 300ms: the backend is released", ce.Reason)
	_ = backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = backend.Read(got)
	require.ErrorIs(t, err, io.EOF)
	require.NoError(t, silent.Close())
}

// /backends reports each backend's state as JSON, for the console and for
// monitoring: free (with QEMU's version), busy (with the client), down
// (with the reason), and held outside the bridge.
func TestBackendStates(t *testing.T) {
	free, held := newFakeBackend(t), newFakeBackend(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never greets
	require.NoError(t, err)
	defer silent.Close()
	dead := filepath.Join(t.TempDir(), "nobody.sock")
	base, _ := serveBridge(t, Config{Token: "tok", Backends: map[string]string{
		"a-free": free.addr(), "b-held": held.addr(), "c-down": "unix:" + dead, "d-outside": "tcp:" + silent.Addr().String()}})

	resp, err := http.Get(base + "/backends")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	c, err := ws.Endpoint{URL: "ws" + strings.TrimPrefix(base, "http") + "/vm/b-held?access_token=tok"}.DialWS(context.Background())
	require.NoError(t, err)
	defer c.Close()
	<-held.conns

	resp, err = http.Get(base + "/backends?access_token=tok")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var states []BackendState
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&states))
	require.Len(t, states, 4)

	require.Equal(t, BackendState{Name: "a-free", Address: free.addr(), State: StateFree, QEMU: "7.2.0"}, states[0])

	require.Equal(t, StateBusy, states[1].State)
	require.Equal(t, c.LocalAddr().String(), states[1].Client)
	require.NotNil(t, states[1].Since)
	require.WithinDuration(t, time.Now(), *states[1].Since, time.Minute)

	require.Equal(t, StateDown, states[2].State)
	require.Contains(t, states[2].Error, "no such file or directory")

	require.Equal(t, StateBusy, states[3].State)
	require.Contains(t, states[3].Error, "no QMP greeting")
	require.Empty(t, states[3].Client)
}

// A client that reconnects the moment its backend connection is gone gets
// the backend: the bridge frees it before the old client's close
// handshake, not after (it refused such a client as busy before).
func TestBridgeFreesTheBackendAsItClosesIt(t *testing.T) {
	fb := newFakeBackend(t)
	base, _ := startBridge(t, Config{Backends: map[string]string{"vm1": fb.addr()}})
	ep := ws.Endpoint{URL: base + "/vm/vm1"}
	buf := make([]byte, 16)
	for i := range 30 {
		c, err := ep.DialWS(context.Background())
		require.NoError(t, err)
		var backend net.Conn
		select {
		case backend = <-fb.conns:
		case <-time.After(5 * time.Second):
			_, err := io.ReadAll(c)
			t.Fatalf("round %d: the backend was not dialed; the client got %v", i, err)
		}
		require.NoError(t, c.Close())
		_ = backend.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, err := backend.Read(buf); err != nil {
				// EOF, or a reset when the greeting was still unread.
				var ne net.Error
				require.False(t, errors.As(err, &ne) && ne.Timeout(), "round %d: the backend was not closed", i)
				break
			}
		}
	}
}
