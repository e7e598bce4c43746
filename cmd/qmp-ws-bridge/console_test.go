package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/websocket"

	"github.com/wirereactor/wirereactor/internal/testpeers"
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

// waitFor polls a JavaScript expression until it returns want.
func (d *devtools) waitFor(t *testing.T, expr, want string) {
	t.Helper()
	var got string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		got, err = d.evaluate(expr)
		require.NoError(t, err)
		if got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s is %q, want %q", expr, got, want)
}

// do runs JavaScript in the page, ignoring its value.
func (d *devtools) do(t *testing.T, js string) {
	t.Helper()
	_, err := d.evaluate("(() => {" + js + "})(); \"\"")
	require.NoError(t, err)
}

// key sends a key press to the focused element, as a user would.
func (d *devtools) key(t *testing.T, key, code string, keyCode int) {
	t.Helper()
	for _, typ := range []string{"keyDown", "keyUp"} {
		require.NoError(t, d.call("Input.dispatchKeyEvent", map[string]any{"type": typ, "key": key, "code": code,
			"windowsVirtualKeyCode": keyCode}, nil))
	}
}

// typeText types text into the focused element.
func (d *devtools) typeText(t *testing.T, text string) {
	t.Helper()
	require.NoError(t, d.call("Input.insertText", map[string]any{"text": text}, nil))
}

// screenshot saves the page as NAME.png among the test artifacts.
func (d *devtools) screenshot(t *testing.T, name string) {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	require.NoError(t, d.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot))
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	path := filepath.Join(testpeers.Artifacts(t), name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

const consoleDOM = `JSON.stringify({
	status: document.getElementById("status").textContent,
	replies: [...document.querySelectorAll("pre.reply")].map(p => p.dataset.command + " " + p.textContent),
	errors: [...document.querySelectorAll("pre.error")].map(p => p.textContent),
	events: [...document.querySelectorAll("#events li")].map(li => li.dataset.event),
	backends: [...document.querySelectorAll("#backends li")].map(li => li.dataset.name + "=" + li.dataset.state),
})`

type consoleState struct {
	Status   string
	Replies  []string
	Errors   []string
	Events   []string
	Backends []string
}

// waitReplies waits until the page shows n replies and m events.
func waitReplies(t *testing.T, page *devtools, n, m int) consoleState {
	t.Helper()
	var st consoleState
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s, err := page.evaluate(consoleDOM)
		require.NoError(t, err)
		if s != "" {
			require.NoError(t, json.Unmarshal([]byte(s), &st))
			if len(st.Replies) >= n && len(st.Events) >= m {
				return st
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the page did not show %d replies and %d events; it shows %+v", n, m, st)
	return st
}

func TestConsoleInChromium(t *testing.T) {
	q := testpeers.StartQEMU(t)
	_ = testpeers.Chromium(t)
	dead := filepath.Join(t.TempDir(), "nobody.sock")
	base, _ := serveBridge(t, Config{Backends: map[string]string{"vm1": "unix:" + q.Socket, "vm2": "unix:" + dead}, Console: true})

	// The page connects to vm1 and runs the commands itself: query-status,
	// stop (whose STOP event it lists), query-status again.
	page := startChromium(t, base+"/?vm=vm1&run=query-status;stop;query-status")
	st := waitReplies(t, page, 3, 1)
	require.Regexp(t, `^connected to vm1 \(QEMU \d+\.\d+\.\d+\)$`, st.Status)
	require.Empty(t, st.Errors)
	require.Equal(t, []string{"STOP"}, st.Events)
	require.Len(t, st.Replies, 3)
	require.True(t, strings.HasPrefix(st.Replies[0], "query-status "), st.Replies[0])
	require.Contains(t, st.Replies[0], `"status": "running"`)
	require.Equal(t, "stop {}", st.Replies[1])
	require.Contains(t, st.Replies[2], `"status": "paused"`)

	// The backend list shows each backend's state; vm1 is now held by
	// this page.
	page.do(t, `document.getElementById("refresh").click()`)
	page.waitFor(t, `[...document.querySelectorAll("#backends li")].map(li => li.dataset.name + "=" + li.dataset.state).join(" ")`, "vm1=busy vm2=down")
	page.waitFor(t, `document.querySelector("#backends li.down .detail").textContent.includes("no such file or directory") + ""`, "true")

	// A command typed into the form runs too, and an error shows its class.
	page.do(t, `document.getElementById("cmd").value = "no-such-command"; document.getElementById("form").requestSubmit()`)
	page.waitFor(t, `[...document.querySelectorAll("pre.error")].map(p => p.textContent).join("\n")`,
		"no-such-command: CommandNotFound: The command no-such-command has not been found")

	// Completion from query-commands: Tab completes a unique prefix and
	// lists the candidates of an ambiguous one.
	page.do(t, `document.getElementById("cmd").focus()`)
	page.typeText(t, "query-versi")
	page.key(t, "Tab", "Tab", 9)
	page.waitFor(t, `document.getElementById("cmd").value`, "query-version ")
	page.do(t, `document.getElementById("cmd").value = ""`)
	page.typeText(t, "query-m")
	page.key(t, "Tab", "Tab", 9)
	page.waitFor(t, `document.getElementById("cmd").value`, "query-m")
	page.waitFor(t, `document.getElementById("completions").textContent.split("  ").includes("query-machines") + ""`, "true")

	// Argument hints from query-qmp-schema, required and optional.
	page.do(t, `document.getElementById("cmd").value = ""`)
	page.typeText(t, "device_del ")
	page.waitFor(t, `document.getElementById("hint").textContent`, "device_del: id: str")
	page.do(t, `document.getElementById("cmd").value = ""`)
	page.typeText(t, "human-monitor-command ")
	page.waitFor(t, `[...document.querySelectorAll("#hint span")].map(s => s.className + ":" + s.textContent).join(", ")`,
		"arg:command-line: str, opt:cpu-index?: int")
	page.screenshot(t, "qmp-ws-bridge-console-hint")

	// History: Up recalls the commands run, newest first.
	page.do(t, `document.getElementById("cmd").value = ""`)
	page.key(t, "ArrowUp", "ArrowUp", 38)
	page.waitFor(t, `document.getElementById("cmd").value`, "no-such-command")
	page.key(t, "ArrowUp", "ArrowUp", 38)
	page.waitFor(t, `document.getElementById("cmd").value`, "query-status")
	page.key(t, "ArrowDown", "ArrowDown", 40)
	page.waitFor(t, `document.getElementById("cmd").value`, "no-such-command")

	// Event filter: cont brings RESUME; filtering on RESUME hides STOP.
	page.do(t, `document.getElementById("cmd").value = "cont"; document.getElementById("form").requestSubmit()`)
	waitReplies(t, page, 4, 2)
	page.do(t, `const f = document.getElementById("event-filter"); f.value = "resume"; f.dispatchEvent(new Event("input"))`)
	page.waitFor(t, `[...document.querySelectorAll("#events li:not([hidden])")].map(li => li.dataset.event).join(",") + " " + document.getElementById("event-count").textContent`, "RESUME 1 of 2")
	page.screenshot(t, "qmp-ws-bridge-console")

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

	// Connecting to the backend that is down says why.
	page.do(t, `document.querySelector('#backends li[data-name="vm2"] button').click()`)
	page.waitFor(t, `document.getElementById("status").textContent.startsWith("closed (1014: backend vm2 unreachable: ") + ""`, "true")
	page.screenshot(t, "qmp-ws-bridge-console-down")
}

// startPrettyQEMU starts QEMU with a pretty=on QMP monitor: every message
// spans many lines.
func startPrettyQEMU(t *testing.T) string {
	t.Helper()
	bin := testpeers.QEMUBinary(t)
	dir, err := os.MkdirTemp("", "qmp")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none",
		"-chardev", "socket,id=mon0,path="+sock+",server=on,wait=off", "-mon", "chardev=mon0,mode=control,pretty=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	require.Eventually(t, func() bool {
		select {
		case <-done:
			t.Fatalf("QEMU exited: %s", stderr.String())
		default:
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 20*time.Second, 20*time.Millisecond)
	return sock
}

// A pretty=on backend's messages span lines: the console reads a JSON
// stream, so it connects (before, it split at newlines and reported "bad
// message: {" for each line of the greeting).
func TestConsolePrettyBackend(t *testing.T) {
	sock := startPrettyQEMU(t)
	_ = testpeers.Chromium(t)
	base, _ := serveBridge(t, Config{Backends: map[string]string{"pretty": "unix:" + sock}, Console: true})
	page := startChromium(t, base+"/?vm=pretty&run=query-status;stop")
	st := waitReplies(t, page, 2, 1)
	require.Regexp(t, `^connected to pretty \(QEMU \d+\.\d+\.\d+\)$`, st.Status)
	require.Empty(t, st.Errors)
	require.Contains(t, st.Replies[0], `"status": "running"`)
	require.Equal(t, []string{"STOP"}, st.Events)
	page.screenshot(t, "qmp-ws-bridge-console-pretty")
}

func TestConsoleTokenInChromium(t *testing.T) {
	q := testpeers.StartQEMU(t)
	_ = testpeers.Chromium(t)
	base, _ := serveBridge(t, Config{Backends: map[string]string{"vm1": "unix:" + q.Socket}, Console: true, Token: "t0k"})

	// Without a token the page says one is needed (before: an empty
	// backend list, and "closed (1006)" on connecting).
	page := startChromium(t, base+"/?x=1")
	page.waitFor(t, `document.getElementById("status").textContent`, "this bridge needs a token: enter it above")
	page.waitFor(t, `document.getElementById("token").className`, "needed")
	page.screenshot(t, "qmp-ws-bridge-console-token")

	// Typed in, the token lists the backends; a connection runs commands
	// (a browser cannot set headers on a WebSocket: the page passes the
	// token as access_token).
	page.do(t, `document.getElementById("token").focus()`)
	page.typeText(t, "t0k")
	page.key(t, "Enter", "Enter", 13)
	page.waitFor(t, `[...document.querySelectorAll("#backends li")].map(li => li.dataset.name + "=" + li.dataset.state).join(" ")`, "vm1=free")
	page.do(t, `document.querySelector('#backends li[data-name="vm1"] button').click()`)
	page.waitFor(t, `/^connected to vm1 \(QEMU \d+\.\d+\.\d+\)$/.test(document.getElementById("status").textContent) + ""`, "true")
	page.do(t, `document.getElementById("cmd").value = "query-status"; document.getElementById("form").requestSubmit()`)
	st := waitReplies(t, page, 1, 0)
	require.Contains(t, st.Replies[0], `"status": "running"`)

	// With a wrong token the upgrade is refused (401, which a browser
	// reports only as 1006); the page finds out why and says so.
	page.do(t, `document.getElementById("token").value = "wrong"; document.querySelector('#backends li[data-name="vm1"] button').click()`)
	page.waitFor(t, `document.getElementById("status").textContent`, "the bridge refused this token: enter the right one")
}
