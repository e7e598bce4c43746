package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runShell runs the program in process and returns its exit status, its
// output and its error output.
func runShell(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// timestamps hides event times so outputs compare exactly.
var timestamps = regexp.MustCompile(` at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z`)

func TestSimulatorOneShot(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"query-status", []string{"-c", "query-status"}, 0,
			"{\n    \"return\": {\n        \"status\": \"running\",\n        \"singlestep\": false,\n        \"running\": true\n    }\n}\n"},
		{"stop raises STOP before its reply", []string{"-c", "stop", "-c", "query-status"}, 0,
			"event STOP\n{\n    \"return\": {}\n}\n{\n    \"return\": {\n        \"status\": \"paused\",\n        \"singlestep\": false,\n        \"running\": false\n    }\n}\n"},
		{"event data", []string{"-c", "system_reset"}, 0,
			"event RESET: {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}\n{\n    \"return\": {}\n}\n"},
		{"unknown command fails", []string{"-c", "query-status", "-c", "no-such-command"}, 1,
			"{\n    \"return\": {\n        \"status\": \"running\",\n        \"singlestep\": false,\n        \"running\": true\n    }\n}\n" +
				"{\n    \"error\": {\n        \"class\": \"CommandNotFound\",\n        \"desc\": \"The command no-such-command has not been found\"\n    }\n}\n"},
		{"bad arguments", []string{"-c", "human-monitor-command"}, 1,
			"{\n    \"error\": {\n        \"class\": \"GenericError\",\n        \"desc\": \"Parameter 'command-line' is missing\"\n    }\n}\n"},
		{"syntax error fails", []string{"-c", "stop x"}, 1, "syntax error: expected key=value, got \"x\"\n"},
		{"raw JSON", []string{"-c", `{"execute": "query-name"}`}, 0, "{\n    \"return\": {\n        \"name\": \"simulator\"\n    }\n}\n"},
		{"HMP", []string{"-H", "-c", "info status", "-c", "stop", "-c", "info status"}, 0,
			"VM status: running\nevent STOP\nVM status: paused\n"},
		{"verbose prints the command", []string{"-v", "-c", "query-kvm"}, 0,
			"{\n    \"execute\": \"query-kvm\"\n}\n{\n    \"return\": {\n        \"enabled\": false,\n        \"present\": true\n    }\n}\n"},
		{"-N skips negotiation: the server refuses commands", []string{"-N", "-c", "query-status"}, 1,
			"{\n    \"error\": {\n        \"class\": \"CommandNotFound\",\n        \"desc\": \"Expecting capabilities negotiation with 'qmp_capabilities'\"\n    }\n}\n"},
		{"-N then negotiating by hand", []string{"-N", "-c", "qmp_capabilities", "-c", "query-name"}, 0,
			"{\n    \"return\": {}\n}\n{\n    \"return\": {\n        \"name\": \"simulator\"\n    }\n}\n"},
		{"open transaction", []string{"-c", "transaction("}, 1, "qmp-shell: transaction( not closed with )\n"},
		{"quit ends the session", []string{"-c", "quit", "-c", "query-status"}, 0,
			"event SHUTDOWN: {\"guest\": false, \"reason\": \"host-qmp-quit\"}\n{\n    \"return\": {}\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runShell(t, "", append([]string{"-p"}, tt.args...)...)
			require.Equal(t, tt.want, timestamps.ReplaceAllString(out, ""))
			require.Equal(t, tt.wantCode, code, "stderr: %s", errOut)
			require.True(t, strings.HasPrefix(errOut, "qmp-shell: no address given; talking to the built-in QMP simulator"), errOut)
		})
	}
}

func TestSimulatorPiped(t *testing.T) {
	input := strings.Join([]string{
		"# comments and blank lines are skipped",
		"",
		"stop",
		`{"execute": "query-status"}`,
		"cont",
		"query-commands",
	}, "\n")
	code, out, _ := runShell(t, input, "-p")
	require.Equal(t, 0, code)
	out = timestamps.ReplaceAllString(out, "")
	require.True(t, strings.HasPrefix(out, "event STOP\n{\n    \"return\": {}\n}\n{\n    \"return\": {\n        \"status\": \"paused\","), out)
	require.Contains(t, out, "event RESUME\n{\n    \"return\": {}\n}\n")

	// The last reply is the command list, and it is what query-commands
	// promises: every command answers something other than CommandNotFound.
	last := out[strings.LastIndex(out, "event RESUME\n{\n    \"return\": {}\n}\n")+len("event RESUME\n{\n    \"return\": {}\n}\n"):]
	var reply struct {
		Return []struct{ Name string } `json:"return"`
	}
	require.NoError(t, json.Unmarshal([]byte(last), &reply))
	var names []string
	for _, c := range reply.Return {
		names = append(names, c.Name)
	}
	require.Subset(t, names, []string{"qmp_capabilities", "query-status", "stop", "cont", "query-version", "query-commands", "human-monitor-command", "quit"})
	for _, n := range names {
		if n == "quit" || n == "qmp_capabilities" {
			continue
		}
		_, out, _ := runShell(t, "", "-c", n)
		require.NotContains(t, out, "CommandNotFound", n)
	}
}

func TestPipedTransaction(t *testing.T) {
	// The shell sends one command named transaction with the actions; the
	// simulator, like QEMU, refuses the lot when one action is abort.
	code, out, _ := runShell(t, "transaction(\nblock-dirty-bitmap-add node=n0 name=b0\nabort\n)\n", "-v")
	require.Equal(t, 1, code)
	require.Equal(t, `{"execute": "transaction", "arguments": {"actions": [{"type": "block-dirty-bitmap-add", "data": {"name": "b0", "node": "n0"}}, {"type": "abort", "data": {}}]}}`+"\n"+
		`{"error": {"class": "GenericError", "desc": "Cannot find device='n0' nor node-name='n0'"}}`+"\n", out)

	code, out, _ = runShell(t, "blockdev-add driver=null-co node-name=n0\ntransaction(\nblock-dirty-bitmap-add node=n0 name=b0\n)\nblock-dirty-bitmap-remove node=n0 name=b0\n")
	require.Equal(t, 0, code, out)
	require.Equal(t, "{\"return\": {}}\n{\"return\": {}}\n{\"return\": {}}\n", out)
}

func TestBadAddresses(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"unix:/nonexistent/qmp.sock"}, 1, "qmp-shell: connect"},
		{[]string{"--listen", "nope", "-c", "x"}, 1, "--listen \"nope\": want unix:/path or tcp:host:port"},
		{[]string{"a", "b"}, 2, "usage: qmp-shell"},
		{[]string{"--listen", "unix:/x", "unix:/y"}, 2, "give an address or --listen, not both"},
	}
	for _, tt := range tests {
		code, _, errOut := runShell(t, "", tt.args...)
		require.Equal(t, tt.code, code, tt.args)
		require.Contains(t, errOut, tt.wantErr)
	}
}
