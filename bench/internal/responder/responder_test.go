package responder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestReply(t *testing.T) {
	for line, want := range map[string]string{
		`{"execute": "qmp_capabilities"}`:         `{"return": {}}`,
		`{"execute": "query-status", "id": 7}`:    `{"return": {"status": "running", "singlestep": false, "running": true}, "id": 7}`,
		`{"execute":"query-name","id":{"a":[1]}}`: `{"return": {"name": "bench"}, "id": {"a":[1]}}`,
		`{"execute": "nope\"x", "id": "s"}`:       `{"error": {"class": "CommandNotFound", "desc": "The command nope\"x has not been found"}, "id": "s"}`,
		`{"execute": `:                            `{"error": {"class": "GenericError", "desc": "JSON parse error"}}`,
	} {
		require.Equal(t, want+"\r\n", string(Reply([]byte(line+"\n"))), line)
	}
}

// TestServePipelined: commands written back to back are answered in order,
// each with its id, and Close ends Serve with every goroutine joined.
func TestServePipelined(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "qmp.sock"))
	require.NoError(t, err)
	var s Server
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	c, err := net.Dial("unix", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, Greeting, greeting)
	// Two commands without newlines, as go-qemu writes them, the first with
	// braces inside a string.
	_, err = c.Write([]byte(`{"execute": "query-name", "id": 1, "x": "}\"{"}{"execute": "query-status", "id": 2}`))
	require.NoError(t, err)
	for _, want := range []string{`{"return": {"name": "bench"}, "id": 1}`, `{"return": {"status": "running", "singlestep": false, "running": true}, "id": 2}`} {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, want+"\r\n", line)
	}

	// A command longer than MaxLine ends the connection.
	_, err = c.Write(append([]byte("{"), make([]byte, MaxLine)...))
	require.NoError(t, err)
	_, err = r.ReadString('\n')
	require.Error(t, err)

	s.Close()
	ln.Close()
	require.ErrorIs(t, <-served, net.ErrClosed)
}

// FuzzReply: any line gets one reply line of valid JSON.
func FuzzReply(f *testing.F) {
	f.Add([]byte(`{"execute": "query-status", "id": 7}`))
	f.Add([]byte(`{"execute": "x", "id": [1, {"a": "b"}]}`))
	f.Add([]byte(`nonsense`))
	f.Add([]byte("{\"execute\": \"x\", \"id\": [1,\n2]}"))
	f.Fuzz(func(t *testing.T, line []byte) {
		out := Reply(line)
		require.True(t, bytes.HasSuffix(out, []byte("\r\n")), "%q", out)
		require.Equal(t, 1, bytes.Count(out, []byte("\n")), "%q", out)
		require.True(t, json.Valid(out), "%q", out)

		// The scanner finds only balanced objects, bounded.
		var sc Scanner
		for _, b := range line {
			cmd, err := sc.Push(b)
			if err != nil {
				require.ErrorIs(t, err, ErrTooLong)
				return
			}
			if cmd != nil {
				require.Equal(t, byte('{'), cmd[0])
				require.LessOrEqual(t, len(cmd), MaxLine)
			}
		}
	})
}
