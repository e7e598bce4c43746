package ws

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testpeers"
)

// The page runs each case against /ws?case=NAME in turn and posts what it
// saw to /result?case=NAME; the server side of each case is below.
const chromiumPage = `<!doctype html><meta charset="utf-8"><script>
"use strict";
const pattern = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i % 251) ^ seed; return b; };
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
function open(name, onopen, onmessage) {
  return new Promise((resolve) => {
    const s = new WebSocket("ws://" + location.host + "/ws?case=" + name, ["binary"]);
    s.binaryType = "arraybuffer";
    let msgs = [];
    s.onopen = () => onopen && onopen(s);
    s.onmessage = (e) => { msgs.push(e.data); onmessage && onmessage(s, e.data); };
    s.onclose = (e) => resolve({protocol: s.protocol, code: e.code, reason: e.reason, clean: e.wasClean,
      messages: msgs.map((m) => typeof m === "string" ? "text" : m.byteLength + (m.byteLength === 3500 ? (same(new Uint8Array(m), pattern(3500, 9)) ? " ok" : " bad") : ""))});
  });
}
const cases = {
  "echo": () => open("echo", (s) => s.send(pattern(900, 1)), (s, d) => s.close(1000)),
  "fragments-with-ping": () => open("fragments-with-ping", null, (s, d) => s.close(1000)),
  "browser-closes": () => open("browser-closes", (s) => s.close(4001, "bye")),
  "server-closes": () => open("server-closes"),
  "text": () => open("text", (s) => s.send("{\"execute\": \"stop\"}")),
  "too-big": () => open("too-big", (s) => s.send(pattern(1001, 2))),
  "masked-from-server": () => open("masked-from-server"),
};
(async () => {
  for (const [name, run] of Object.entries(cases)) {
    const r = await run();
    await fetch("/result?case=" + name, {method: "POST", body: JSON.stringify(r)});
  }
  await fetch("/done");
})();
</script>`

// rawFrame is an unmasked server frame.
func rawFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, byte(n))
	default:
		f = append(f, 126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	return append(f, payload...)
}

type browserResult struct {
	Protocol string
	Code     int
	Reason   string
	Clean    bool
	Messages []string
}

// Our server against Chromium's WebSocket client: a message it sends is
// read whole; ours, longer than the frame limit, arrives as one message;
// a message of ours fragmented with a ping between fragments is
// assembled; close codes and reasons pass both ways; its text frames and
// oversized frames are refused with 1003 and 1009; a masked server frame
// makes it fail the connection.
func TestChromiumInterop(t *testing.T) {
	bin := testpeers.Chromium(t)
	var mu sync.Mutex
	server := map[string]string{} // what our side saw, per case
	browser := map[string]browserResult{}
	done := make(chan struct{})
	var handlers sync.WaitGroup
	ep := Endpoint{MaxFrameSize: 1000, CloseTimeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, chromiumPage)
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		var res browserResult
		_ = json.NewDecoder(r.Body).Decode(&res)
		mu.Lock()
		browser[r.URL.Query().Get("case")] = res
		mu.Unlock()
	})
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		default:
			close(done)
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		name := r.URL.Query().Get("case")
		c, err := ep.Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		saw := serverCase(name, c)
		mu.Lock()
		server[name] = saw
		mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, srv.URL+"/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	select {
	case <-done:
	case <-exited:
		t.Fatalf("Chromium exited before the page finished: %s", stderr.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("the page did not finish; results so far: %+v", browser)
	}
	handlers.Wait()

	mu.Lock()
	defer mu.Unlock()
	for _, res := range browser {
		require.Equal(t, Subprotocol, res.Protocol)
	}
	require.Equal(t, "900 bytes ok; closed", server["echo"])
	require.Equal(t, browserResult{Protocol: "binary", Code: 1000, Clean: true, Messages: []string{"3500 ok"}}, browser["echo"])

	require.Equal(t, "closed", server["fragments-with-ping"])
	require.Equal(t, browserResult{Protocol: "binary", Code: 1000, Clean: true, Messages: []string{"3500 ok"}}, browser["fragments-with-ping"])

	require.Equal(t, `close 4001 "bye"`, server["browser-closes"])
	require.Equal(t, browserResult{Protocol: "binary", Code: 4001, Reason: "", Clean: true, Messages: []string{}}, browser["browser-closes"])

	require.Equal(t, "", server["server-closes"])
	require.Equal(t, browserResult{Protocol: "binary", Code: 4002, Reason: "done here", Clean: true, Messages: []string{}}, browser["server-closes"])

	require.Equal(t, "protocol error 1003", server["text"])
	require.Equal(t, 1003, browser["text"].Code)

	require.Equal(t, "protocol error 1009", server["too-big"])
	require.Equal(t, 1009, browser["too-big"].Code)

	require.Equal(t, 1006, browser["masked-from-server"].Code, "Chromium fails a connection whose server masks")
	require.False(t, browser["masked-from-server"].Clean)
}

// serverCase runs our side of one case and says what it saw.
func serverCase(name string, c *Conn) string {
	describe := func(err error) string {
		var pe *ProtocolError
		var ce *CloseError
		switch {
		case errors.Is(err, io.EOF):
			return "closed"
		case errors.As(err, &pe):
			return fmt.Sprintf("protocol error %d", pe.Code)
		case errors.As(err, &ce):
			return fmt.Sprintf("close %d %q", ce.Code, ce.Reason)
		}
		return fmt.Sprintf("error %v", err)
	}
	switch name {
	case "echo":
		got := make([]byte, 900)
		if _, err := io.ReadFull(c, got); err != nil {
			return describe(err)
		}
		if !bytes.Equal(got, pattern(900, 1)) {
			return "900 bytes differ"
		}
		if _, err := c.Write(pattern(3500, 9)); err != nil {
			return describe(err)
		}
		_, err := c.Read(make([]byte, 1))
		return "900 bytes ok; " + describe(err)
	case "fragments-with-ping":
		p := pattern(3500, 9)
		var wire []byte
		wire = append(wire, rawFrame(0x02, p[:300])...)
		wire = append(wire, rawFrame(0x89, []byte("between"))...)
		wire = append(wire, rawFrame(0x00, p[300:1000])...)
		wire = append(wire, rawFrame(0x00, p[1000:2000])...)
		wire = append(wire, rawFrame(0x80, p[2000:])...)
		if _, err := c.nc.Write(wire); err != nil {
			return describe(err)
		}
		_, err := c.Read(make([]byte, 1)) // takes the pong, then the close
		return describe(err)
	case "server-closes":
		if err := c.CloseWithStatus(4002, "done here"); err != nil {
			return describe(err)
		}
		return ""
	case "masked-from-server":
		f := []byte{0x82, 0x80 | 4, 1, 2, 3, 4, 'd' ^ 1, 'a' ^ 2, 't' ^ 3, 'a' ^ 4}
		if _, err := c.nc.Write(f); err != nil {
			return describe(err)
		}
		_, err := c.Read(make([]byte, 1))
		return describe(err)
	}
	_, err := c.Read(make([]byte, 1))
	return describe(err)
}
