package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/tcp"
)

// calls is a client's session: an echo, a short stream and a failure.
func calls(ctx context.Context, c *Client) []any {
	var all []any
	for _, call := range []struct {
		name string
		args map[hgcbor.Bytes]any
	}{
		{"echo", map[hgcbor.Bytes]any{"message": []byte("hello")}},
		{"stream", map[hgcbor.Bytes]any{"count": 3}},
		{"fail", map[hgcbor.Bytes]any{"message": []byte("on purpose")}},
	} {
		objs, err := c.Call(ctx, call.name, call.args)
		if err != nil {
			all = append(all, err.Error())
		}
		all = append(all, objs...)
	}
	return all
}

// The server records each connection with -record; the transcript reads
// as frames in human syntax and replays the server to the same client with
// no server and no socket.
func TestServerRecordsAndTheRecordingReplays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	ln, err := tcp.Endpoint{Address: "127.0.0.1:0"}.Listen(ctx)
	require.NoError(t, err)
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- (&Server{RecordDir: dir}).Serve(srvCtx, ln) }()

	d, err := endpoint(listenAddress(ln))
	require.NoError(t, err)
	c, err := Dial(ctx, d)
	require.NoError(t, err)
	live := calls(ctx, c)
	require.NoError(t, c.Close())
	stop()
	require.NoError(t, <-done) // every connection ended: the transcript is whole

	f, err := os.Open(filepath.Join(dir, "conn-1.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	tr, err := transcript.Read(f)
	require.NoError(t, err)
	require.Equal(t, "server", tr.Header.Side)
	require.Equal(t, "1 1 stream-begin command-request new cbor:{b'args': {b'message': b'hello'}, b'name': b'echo'}", tr.Entries[1].Frame)

	peer, err := transcript.NewFramePeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	served := make(chan error, 1)
	rc, err := Dial(ctx, transport.DialFunc(func(context.Context) (net.Conn, error) {
		mine, theirs := net.Pipe()
		go func() { served <- transcript.Serve(ctx, theirs, peer) }()
		return mine, nil
	}))
	require.NoError(t, err)
	replayed := calls(ctx, rc)
	require.NoError(t, rc.Close())
	require.NoError(t, <-served)
	require.NoError(t, peer.Done())
	require.Equal(t, live, replayed)
	require.Contains(t, live[len(live)-1], "fail: on purpose")
}

func TestCommandLineRecordFlag(t *testing.T) {
	var out, errOut strings.Builder
	require.Equal(t, 2, run(context.Background(), []string{"serve", "-record"}, &out, &errOut))
	require.Contains(t, errOut.String(), "serve [-record DIR] ADDRESS")
}
