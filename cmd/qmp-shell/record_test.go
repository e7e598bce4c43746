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

	"github.com/wirereactor/wirereactor/transcript"
)

// --record writes the session with the simulator as a transcript that
// replays: the same shell commands against the replaying peer print the
// same output, event timestamps included.
func TestRecordReplays(t *testing.T) {
	file := filepath.Join(t.TempDir(), "session.jsonl")
	cmds := []string{"-c", "query-status", "-c", "stop", "-c", "query-status",
		"-c", `{"execute": "query-name", "id": "mine"}`, "-c", "no-such-command"}
	code, recorded, errOut := runShell(t, "", append([]string{"--record", file}, cmds...)...)
	require.Equal(t, 1, code, "no-such-command fails: %s", errOut)
	require.Contains(t, recorded, `"status": "paused"`)

	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	tr, err := transcript.Read(f)
	require.NoError(t, err)
	require.Equal(t, "qmp", tr.Header.Protocol)
	require.Equal(t, "recorded by qmp-shell from the built-in simulator", tr.Header.Note)
	require.Equal(t, transcript.EvOpen, tr.Entries[0].Ev)
	require.Equal(t, transcript.EvClose, tr.Entries[len(tr.Entries)-1].Ev)

	// Replay to the shell itself, over a unix socket served by the peer.
	peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "rec") // short: unix socket paths are limited
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		served <- transcript.Serve(ctx, conn, peer)
	}()
	code, replayed, errOut := runShell(t, "", append(cmds, "unix:"+sock)...)
	require.Equal(t, 1, code, errOut)
	require.NoError(t, <-served)
	require.NoError(t, peer.Done())
	require.Equal(t, recorded, replayed)
}

// A shell that cannot create its transcript says so and talks to nothing.
func TestRecordUnwritable(t *testing.T) {
	code, out, errOut := runShell(t, "", "--record", filepath.Join(t.TempDir(), "no", "such", "dir.jsonl"), "-c", "query-status")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "qmp-shell: --record: open ")
	require.False(t, strings.Contains(errOut, "running"))
}
