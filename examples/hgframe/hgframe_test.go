package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/ws"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer serves on ep and returns what clients dial; the server stops
// at the end of the test.
func startServer(t *testing.T, ep transport.ListenOpener) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := ep.Listen(ctx)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		var s Server
		done <- s.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return listenAddress(ln)
}

func TestGoClient(t *testing.T) {
	for _, tr := range []struct {
		name string
		ep   transport.ListenOpener
	}{
		{"tcp", tcp.Endpoint{Address: "127.0.0.1:0"}},
		{"ws", ws.Endpoint{URL: "ws://127.0.0.1:0/hg"}},
	} {
		t.Run(tr.name, func(t *testing.T) {
			addr := startServer(t, tr.ep)
			d, err := endpoint(addr)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := Dial(ctx, d)
			require.NoError(t, err)
			defer func() { require.NoError(t, c.Close()) }()

			objs, err := c.Call(ctx, "echo", map[hgcbor.Bytes]any{"message": []byte("hello"), "n": 7})
			require.NoError(t, err)
			require.Equal(t, []any{map[any]any{hgcbor.Bytes("message"): []byte("hello"), hgcbor.Bytes("n"): int64(7)}}, objs)

			// Large enough to span many frames and several reads.
			objs, err = c.Call(ctx, "stream", map[hgcbor.Bytes]any{"count": 20000})
			require.NoError(t, err)
			require.Len(t, objs, 20000)
			for i, o := range objs {
				require.Equal(t, map[any]any{hgcbor.Bytes("index"): int64(i),
					hgcbor.Bytes("line"): []byte(fmt.Sprintf("line %d of 20000", i+1))}, o)
			}

			tests := []struct {
				name string
				args map[hgcbor.Bytes]any
				want CommandError
			}{
				{"fail", map[hgcbor.Bytes]any{"message": []byte("on purpose")}, CommandError{"fail: %s", []string{"on purpose"}}},
				{"fail", nil, CommandError{"fail: %s", []string{"no reason given"}}},
				{"stream", map[hgcbor.Bytes]any{"count": maxStreamCount + 1}, CommandError{"stream: count must be between 1 and %s", []string{"100000"}}},
				{"stream", map[hgcbor.Bytes]any{"count": 0}, CommandError{"stream: count must be between 1 and %s", []string{"100000"}}},
				{"stream", map[hgcbor.Bytes]any{"count": []byte("many")}, CommandError{"stream: %s", []string{"argument count is not an integer"}}},
				{"nope", nil, CommandError{"unknown command: %s", []string{"nope"}}},
			}
			for _, tt := range tests {
				_, err := c.Call(ctx, tt.name, tt.args)
				var ce *CommandError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, tt.want, *ce)
			}

			// The connection still works after command errors.
			objs, err = c.Call(ctx, "stream", map[hgcbor.Bytes]any{"count": 1})
			require.NoError(t, err)
			require.Len(t, objs, 1)
		})
	}
}

func TestMercurialClientReactor(t *testing.T) {
	py := testpeers.MercurialPython(t)
	addr := startServer(t, tcp.Endpoint{Address: "127.0.0.1:0"})
	host, port, err := net.SplitHostPort(strings.TrimPrefix(addr, "tcp:"))
	require.NoError(t, err)
	want := strings.Join([]string{
		"echo ok [(b'message', b'hello'), (b'n', 42)]",
		"stream ok 1000 objects, last [(b'index', 999), (b'line', b'line 1000 of 1000')]",
		"fail error b'fail: %s' [b'on purpose']",
		"nope error b'unknown command: %s' [b'nope']",
		"",
	}, "\n")
	// Without content encodings the server answers in identity; with them
	// it picks the first it supports, and Mercurial decodes the stream.
	for _, encodings := range [][]string{nil, {"zlib"}, {"zstd-8mb", "zlib"}, {"identity"}} {
		t.Run(fmt.Sprint(encodings), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, append([]string{"testdata/hg_client.py", host, port}, encodings...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			require.Equal(t, want, string(out))
		})
	}
}

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), nil, &out, &errOut), errOut.String())
	lines := strings.SplitN(out.String(), "\n", 2)
	require.True(t, strings.HasPrefix(lines[0], "server on tcp:127.0.0.1:"), lines[0])
	require.Equal(t, "echo -> {b'message': b'hello'}\n"+
		"stream -> {b'index': 0, b'line': b'line 1 of 3'}\n"+
		"stream -> {b'index': 1, b'line': b'line 2 of 3'}\n"+
		"stream -> {b'index': 2, b'line': b'line 3 of 3'}\n"+
		"fail -> command error: fail: on purpose\n", lines[1])
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{[]byte("it's \\ \x00"), `b'it\'s \\ \x00'`},
		{map[any]any{hgcbor.Bytes("b"): nil, hgcbor.Bytes("a"): []any{true, false, int64(-1)}}, "{b'a': [True, False, -1], b'b': None}"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, hgcbor.PythonLiteral(tt.v))
	}
}

func TestCommandLine(t *testing.T) {
	addr := startServer(t, tcp.Endpoint{Address: "127.0.0.1:0"})
	tests := []struct {
		args    []string
		code    int
		out     string
		errText string
	}{
		{[]string{"call", addr, "echo", "message=hi", "n=3"}, 0, "{b'message': b'hi', b'n': 3}\n", ""},
		{[]string{"call", addr, "stream", "count=2"}, 0, "{b'index': 0, b'line': b'line 1 of 2'}\n{b'index': 1, b'line': b'line 2 of 2'}\n", ""},
		{[]string{"call", addr, "fail", "message=boom"}, 1, "", "hgframe: fail: command error: fail: boom\n"},
		{[]string{"call", addr, "echo", "novalue"}, 2, "", "hgframe: argument \"novalue\": want key=value\n"},
		{[]string{"call", "udp:x", "echo"}, 2, "", "hgframe: address \"udp:x\": want tcp:HOST:PORT or ws://HOST:PORT/PATH\n"},
		{[]string{"bogus"}, 2, "", usage},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errOut)
		require.Equal(t, tt.code, code, tt.args)
		require.Equal(t, tt.out, out.String(), tt.args)
		require.Equal(t, tt.errText, errOut.String(), tt.args)
	}
}
