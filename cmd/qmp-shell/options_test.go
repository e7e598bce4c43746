package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

func TestCommandTimeout(t *testing.T) {
	srv := qmptest.StartUnix(t, qmptest.Config{Name: "vm"})
	srv.Handle("x-slow", qmptest.Slow(400*time.Millisecond, qmptest.Reply(map[string]bool{"late": true})))
	// QEMU answers in order: query-name waits for x-slow's late reply
	// (about 100ms), which the shell drops, and then gets its own.
	code, out, errOut := runShell(t, "", "--command-timeout", "300ms", "-c", "x-slow", "-c", "query-name", srv.Addr())
	require.Equal(t, 1, code, "a command that timed out is a failure")
	require.Equal(t, "qmp-shell: no reply to x-slow within 300ms (--command-timeout); stopped waiting (a late reply is dropped)\n"+
		`{"return": {"name": "vm"}}`+"\n", out, errOut)

	code, out, _ = runShell(t, "", "--command-timeout", "2s", "-c", "x-slow", srv.Addr())
	require.Equal(t, 0, code)
	require.Equal(t, `{"return": {"late": true}}`+"\n", out)
}

func TestRawJSONKeepsID(t *testing.T) {
	code, out, _ := runShell(t, "", "-c", `{"execute": "query-name", "id": 42}`, "-c", `{"execute": "nope", "id": {"mine": [1, "a"]}}`, "-c", `{"execute": "query-name", "id": null}`)
	require.Equal(t, 1, code)
	require.Equal(t, `{"return": {"name": "simulator"}, "id": 42}`+"\n"+
		`{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}, "id": {"mine": [1, "a"]}}`+"\n"+
		`{"return": {"name": "simulator"}}`+"\n", out)

	_, out, _ = runShell(t, "", "-v", "-c", `{"execute": "query-name", "id": "x"}`)
	require.Equal(t, `{"execute": "query-name", "id": "x"}`+"\n"+`{"return": {"name": "simulator"}, "id": "x"}`+"\n", out)
}

func TestPrettyFlag(t *testing.T) {
	_, out, _ := runShell(t, "", "-c", "query-status")
	require.Equal(t, `{"return": {"status": "running", "singlestep": false, "running": true}}`+"\n", out)
	_, out, _ = runShell(t, "", "-p", "-c", "query-status")
	require.Equal(t, "{\n    \"return\": {\n        \"status\": \"running\",\n        \"singlestep\": false,\n        \"running\": true\n    }\n}\n", out)
}

func TestEventsOnEnterPiped(t *testing.T) {
	code, out, _ := runShell(t, "stop\ncont\n\nquery-status\n", "--events=enter")
	require.Equal(t, 0, code)
	require.Equal(t, "{\"return\": {}}\n{\"return\": {}}\nevent STOP\nevent RESUME\n"+
		`{"return": {"status": "running", "singlestep": false, "running": true}}`+"\n", timestamps.ReplaceAllString(out, ""))

	code, _, errOut := runShell(t, "", "--events=sometimes")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--events "sometimes": want live or enter`)
}

// tokenServer answers every request with 401 and records the
// Authorization headers it was sent.
func tokenServer(t *testing.T) (url string, got func() []string) {
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/vm/vm1", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string{}, auth...)
	}
}

func TestToken(t *testing.T) {
	url, got := tokenServer(t)
	code, _, _ := runShell(t, "", "--token", "sekrit", "-c", "query-status", url)
	require.Equal(t, 1, code)
	t.Setenv("QMP_BRIDGE_TOKEN", "from-env")
	runShell(t, "", "-c", "query-status", url)
	runShell(t, "", "--token", "flag-wins", "-c", "query-status", url)
	require.Equal(t, []string{"Bearer sekrit", "Bearer from-env", "Bearer flag-wins"}, got())
}

func TestHelpNamesTheToken(t *testing.T) {
	code, _, errOut := runShell(t, "", "-h")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "QMP_BRIDGE_TOKEN")
	require.Contains(t, errOut, "--token")
	require.Contains(t, errOut, "object-add qom-type=memory-backend-ram id=mem0 size=1048576")
	require.Contains(t, errOut, "-token TOKEN")
}

// examples returns the indented lines of a text that follow the line
// containing after, up to the next blank line, without indentation.
func examples(text, after, indent string) []string {
	_, rest, ok := strings.Cut(text, after)
	if !ok {
		return nil
	}
	var out []string
	for _, line := range strings.Split(rest, "\n")[1:] {
		if strings.TrimSpace(line) == "" {
			if len(out) > 0 {
				break
			}
			continue
		}
		if !strings.HasPrefix(line, indent) {
			break
		}
		out = append(out, strings.TrimPrefix(line, indent))
	}
	return out
}

// TestUsageExamplesRun: every example in -h and in the package doc runs on
// the built-in simulator without an error (the first try of a newcomer).
func TestUsageExamplesRun(t *testing.T) {
	doc, err := os.ReadFile("main.go")
	require.NoError(t, err)
	for name, lines := range map[string][]string{
		"-h":          examples(usageText, "qmp-shell takes them:", "  "),
		"package doc": examples(uncomment(string(doc)), "Input is qmp-shell syntax:", "\t"),
	} {
		require.GreaterOrEqual(t, len(lines), 5, name)
		code, out, errOut := runShell(t, strings.Join(lines, "\n"))
		require.Equal(t, 0, code, "%s: %s\n%s", name, out, errOut)
		require.NotContains(t, out, `"error"`, name)
		require.Equal(t, len(lines)-countTransactionLines(lines), strings.Count(out, `{"return": `), "%s: one reply per command:\n%s", name, out)
	}
}

// uncomment strips the "//" of comment lines.
func uncomment(src string) string {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		l = strings.TrimPrefix(l, "//")
		lines[i] = strings.TrimPrefix(l, " ")
	}
	return strings.Join(lines, "\n")
}

// countTransactionLines counts the lines of a multi-line transaction that
// send nothing themselves.
func countTransactionLines(lines []string) int {
	n, in := 0, false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case l == "transaction(":
			in = true
		case in && l == ")":
			in = false
			n++ // the transaction is sent once, for "transaction(" and ")"
		case in:
			n++
		}
	}
	return n
}
