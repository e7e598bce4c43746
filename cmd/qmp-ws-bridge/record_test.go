package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// bridgedSession runs a few commands, an error and an event, and returns
// what the client saw.
func bridgedSession(ctx context.Context, c *qmpclient.Client, cmds ...string) ([]string, error) {
	stops := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})
	defer stops.Close()
	var out []string
	for _, cmd := range cmds {
		r, err := c.Execute(ctx, cmd, nil)
		var ee *qmpclient.ExecuteError
		switch {
		case errors.As(err, &ee):
			out = append(out, cmd+" error "+ee.Info.Class+": "+ee.Info.Desc)
		case err != nil:
			return out, err
		default:
			out = append(out, cmd+" "+string(r))
		}
		if cmd == "stop" {
			ev, err := stops.Next(ctx)
			if err != nil {
				return out, err
			}
			out = append(out, fmt.Sprintf("event %s at %s", ev.Name, ev.Timestamp.Format(time.RFC3339Nano)))
		}
	}
	return out, nil
}

// --record DIR writes one transcript per client connection, named by time
// and backend; each replays to the same client code with the same replies
// and events.
func TestBridgeRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vm1 := qmptest.StartUnix(t, qmptest.Config{Name: "vm1"})
	vm1.HandleQEMU72()
	vm2 := qmptest.StartUnix(t, qmptest.Config{Name: "vm2"})
	vm2.HandleQEMU72()
	dir := filepath.Join(t.TempDir(), "recordings") // created by the bridge
	base, b := startBridge(t, Config{Backends: map[string]string{"vm1": vm1.Addr(), "vm2": vm2.Addr()}, RecordDir: dir})

	sessions := []struct {
		backend string
		cmds    []string
	}{
		{"vm2", []string{"query-status", "stop", "query-status", "no-such-command"}},
		{"vm1", []string{"query-name"}},
	}
	var live [][]string
	for _, s := range sessions {
		c, err := connectQMP(t, ws.Endpoint{URL: base + "/vm/" + s.backend})
		require.NoError(t, err)
		got, err := bridgedSession(ctx, c, s.cmds...)
		require.NoError(t, err)
		require.NoError(t, c.Disconnect(ctx))
		live = append(live, got)
	}
	require.Contains(t, live[0], `query-status {"status": "paused", "singlestep": false, "running": false}`)
	b.Close() // waits for the relays: the transcripts are complete

	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	sort.Strings(files)
	require.Len(t, files, 2)
	name := regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-(vm\d)\.jsonl$`)
	for i, s := range sessions {
		m := name.FindStringSubmatch(filepath.Base(files[i]))
		require.NotNil(t, m, "file name %s", files[i])
		require.Equal(t, s.backend, m[1], "the names sort by time")
		st, err := os.Stat(files[i])
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

		b, err := os.ReadFile(files[i])
		require.NoError(t, err)
		tr, err := transcript.Read(bytes.NewReader(b))
		require.NoError(t, err)
		require.Equal(t, "qmp", tr.Header.Protocol)
		require.Contains(t, tr.Header.Note, "backend "+s.backend)
		require.Equal(t, []int{1}, tr.Conns())

		peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
		require.NoError(t, err)
		dial, served := transcript.DialPipe(ctx, peer)
		c := qmpclient.NewClient(qmpclient.Config{Name: "replay"})
		require.NoError(t, c.ConnectDialer(ctx, dial))
		replayed, err := bridgedSession(ctx, c, s.cmds...)
		require.NoError(t, err)
		require.NoError(t, c.Disconnect(ctx))
		require.NoError(t, <-served)
		require.NoError(t, peer.Done())
		require.Equal(t, live[i], replayed)
	}
}

func TestRecordFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-h"}, &out, &errOut))
	require.Contains(t, errOut.String(), "-record DIR")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"--backend", "a=unix:/x", "--record", file}, &out, &errOut))
	require.Contains(t, errOut.String(), "qmp-ws-bridge: record directory: ")
}
