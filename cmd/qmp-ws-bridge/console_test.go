package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/wirereactor/wirereactor/cmd/internal/testpeers"
)

// devtools is a connection to one page of a browser over the Chrome
// DevTools protocol.
type devtools struct {
	ws   *websocket.Conn
	next int
}

// call sends a DevTools command and returns its result, skipping the
// events in between.
func (d *devtools) call(method string, params any, result any) error {
	d.next++
	id := d.next
	if err := websocket.JSON.Send(d.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return err
	}
	_ = d.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := websocket.JSON.Receive(d.ws, &msg); err != nil {
			return err
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			return fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, result)
	}
}

// evaluate runs JavaScript in the page and returns its string value.
func (d *devtools) evaluate(expr string) (string, error) {
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	if err := d.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return "", err
	}
	s, _ := r.Result.Value.(string)
	return s, nil
}

// startChromium opens url in headless Chromium and connects to the page.
func startChromium(t *testing.T, url string) *devtools {
	t.Helper()
	bin := testpeers.Chromium(t)
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins=*",
		"--window-size=1100,700", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	// Chromium writes the port it picked to DevToolsActivePort.
	var port string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if err != nil {
			return false
		}
		port, _, _ = strings.Cut(string(b), "\n")
		return port != ""
	}, 60*time.Second, 50*time.Millisecond, "Chromium did not start: %s", &stderr)

	var pageURL string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var targets []struct {
			Type, URL, WebSocketDebuggerURL string
		}
		if json.NewDecoder(resp.Body).Decode(&targets) != nil {
			return false
		}
		for _, tg := range targets {
			if tg.Type == "page" && strings.HasPrefix(tg.URL, url[:strings.Index(url, "?")]) {
				pageURL = tg.WebSocketDebuggerURL
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond)

	conn, err := websocket.Dial(pageURL, "", "http://127.0.0.1/")
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &devtools{ws: conn}
}

func TestConsoleInChromium(t *testing.T) {
	q := testpeers.StartQEMU(t)
	_ = testpeers.Chromium(t)
	base, _ := serveBridge(t, Config{Backends: map[string]string{"vm1": "unix:" + q.Socket}, Console: true})

	// The page connects to vm1 and runs the commands itself: query-status,
	// stop (whose STOP event it lists), query-status again.
	page := startChromium(t, base+"/?vm=vm1&run=query-status;stop;query-status")

	const dom = `JSON.stringify({
		status: document.getElementById("status").textContent,
		replies: [...document.querySelectorAll("pre.reply")].map(p => p.dataset.command + " " + p.textContent),
		errors: [...document.querySelectorAll("pre.error")].map(p => p.textContent),
		events: [...document.querySelectorAll("#events li")].map(li => li.dataset.event),
		backends: [...document.querySelectorAll("#backend option")].map(o => o.value),
	})`
	type state struct {
		Status   string
		Replies  []string
		Errors   []string
		Events   []string
		Backends []string
	}
	var st state
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		s, err := page.evaluate(dom)
		require.NoError(t, err)
		if s != "" {
			require.NoError(t, json.Unmarshal([]byte(s), &st))
			if len(st.Replies) >= 3 && len(st.Events) >= 1 {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page did not show three replies and an event; it shows %+v", st)
		case <-time.After(100 * time.Millisecond):
		}
	}
	require.Equal(t, "connected to vm1", st.Status)
	require.Equal(t, []string{"vm1"}, st.Backends)
	require.Empty(t, st.Errors)
	require.Equal(t, []string{"STOP"}, st.Events)
	require.Len(t, st.Replies, 3)
	require.True(t, strings.HasPrefix(st.Replies[0], "query-status "), st.Replies[0])
	require.Contains(t, st.Replies[0], `"status": "running"`)
	require.Equal(t, "stop {}", st.Replies[1])
	require.Contains(t, st.Replies[2], `"status": "paused"`)

	// A command typed into the form runs too, and an error shows its class.
	_, err := page.evaluate(`document.getElementById("cmd").value = "no-such-command"; document.getElementById("form").requestSubmit(); ""`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := page.evaluate(`[...document.querySelectorAll("pre.error")].map(p => p.textContent).join("\n")`)
		return err == nil && s == "no-such-command: CommandNotFound: The command no-such-command has not been found"
	}, 30*time.Second, 100*time.Millisecond)

	// A second browser client is closed at once with the reason.
	var busy struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, page.call("Runtime.evaluate", map[string]any{
		"expression": `new Promise((resolve) => {
			const u = new URL("/vm/vm1", location.href); u.protocol = "ws:";
			const s = new WebSocket(u, ["binary"]);
			s.onclose = (e) => resolve(e.code + " " + e.reason);
		})`,
		"awaitPromise": true, "returnByValue": true}, &busy))
	require.Equal(t, "1013 busy: backend vm1 already has a client", busy.Result.Value)

	var shot struct {
		Data string `json:"data"`
	}
	require.NoError(t, page.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot))
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	path := filepath.Join(testpeers.Artifacts(t), "qmp-ws-bridge-console.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

func TestConsoleTokenInChromium(t *testing.T) {
	q := testpeers.StartQEMU(t)
	_ = testpeers.Chromium(t)
	base, _ := serveBridge(t, Config{Backends: map[string]string{"vm1": "unix:" + q.Socket}, Console: true, Token: "t0k"})

	// A browser cannot set headers on a WebSocket: the page passes the
	// token as access_token, for the backend list and the connection.
	page := startChromium(t, base+"/?vm=vm1&access_token=t0k&run=query-status")
	require.Eventually(t, func() bool {
		s, err := page.evaluate(`document.getElementById("status").textContent + "|" +
			[...document.querySelectorAll("pre.reply")].map(p => p.textContent).join("")`)
		return err == nil && strings.HasPrefix(s, "connected to vm1|") && strings.Contains(s, `"status": "running"`)
	}, 60*time.Second, 100*time.Millisecond)

	// With a wrong token the upgrade is refused (401): the browser reports
	// an abnormal closure, 1006, and the page shows it.
	_, err := page.evaluate(`document.getElementById("token").value = "wrong"; document.getElementById("connect").click(); ""`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := page.evaluate(`document.getElementById("status").textContent`)
		return err == nil && s == "closed (1006)"
	}, 30*time.Second, 100*time.Millisecond)
}
