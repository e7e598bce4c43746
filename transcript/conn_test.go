package transcript_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// passPipe passes the write end of a pipe to server s with getfd as
// "fd0", and checks that s holds a working duplicate.
func passPipe(ctx context.Context, t *testing.T, c *qmpclient.Client, s *qmptest.Server) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	_, err = c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "fd0"}, w)
	require.NoError(t, err)
	got := s.FD("fd0")
	require.NotNil(t, got, "the server received the descriptor")
	_, err = got.Write([]byte("hi"))
	require.NoError(t, err)
	b := make([]byte, 2)
	_, err = io.ReadFull(r, b)
	require.NoError(t, err)
	require.Equal(t, "hi", string(b))
}

// A recorded unix connection still passes descriptors: getfd through
// ExecuteWithFiles reaches the server (before, RecordConn hid the unix
// connection and ExecuteWithFiles failed with ErrFilesUnsupported), and the
// transcript notes the descriptor just before the command it went with.
// The transcript replays, the descriptor aside.
func TestRecordConnPassesDescriptors(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the server's cleanup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := qmptest.StartUnix(t, qmptest.Config{})
	var buf bytes.Buffer
	rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{SplitJSON: true, Header: transcript.Header{Protocol: "qmp"}})
	require.NoError(t, err)
	c := qmpclient.NewClient(qmpclient.Config{Name: "fds"})
	require.NoError(t, c.ConnectDialer(ctx, transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
		nc, err := unix.Endpoint{Path: strings.TrimPrefix(s.Addr(), "unix:")}.Dial(ctx)
		if err != nil {
			return nil, err
		}
		return transcript.RecordConn(nc, rec), nil
	})))
	passPipe(ctx, t, c, s)
	require.NoError(t, c.Disconnect(ctx))
	require.NoError(t, rec.Err())

	tr, err := transcript.Read(&buf)
	require.NoError(t, err)
	var fdsAt int
	for i, e := range tr.Entries {
		if e.FDs != 0 {
			require.Zero(t, fdsAt, "one entry with descriptors")
			fdsAt = i
			require.Equal(t, transcript.EvSend, e.Ev)
			require.Equal(t, 1, e.FDs)
			require.Empty(t, e.Bytes())
		}
	}
	require.NotZero(t, fdsAt, "the descriptor is recorded")
	require.JSONEq(t, `{"execute": "getfd", "arguments": {"fdname": "fd0"}, "id": 2}`, string(tr.Entries[fdsAt+1].Bytes()))

	peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	dial, served := transcript.DialPipe(ctx, peer)
	rc := qmpclient.NewClient(qmpclient.Config{Name: "replay"})
	require.NoError(t, rc.ConnectDialer(ctx, dial))
	reply, err := rc.Execute(ctx, "getfd", map[string]string{"fdname": "fd0"})
	require.NoError(t, err)
	require.JSONEq(t, `{}`, string(reply))
	require.NoError(t, rc.Disconnect(ctx))
	require.NoError(t, <-served)
	require.NoError(t, peer.Done())
	_, err = dial.Dial(ctx)
	require.ErrorIs(t, err, transcript.ErrDialedTwice, "the peer served its one connection")
}

// A recorded connection that cannot pass descriptors does not pretend to.
func TestRecordConnKeepsTheKind(t *testing.T) {
	rec, err := transcript.NewRecorder(io.Discard, transcript.RecorderConfig{})
	require.NoError(t, err)
	a, b := net.Pipe()
	defer b.Close()
	rc := transcript.RecordConn(a, rec)
	defer rc.Close()
	_, ok := rc.(unix.FDConn)
	require.False(t, ok)
}

// A recorded server connection hands the descriptors it received to the
// server (qmptest's getfd takes them through unix.FDConn).
func TestRecordConnHandsReceivedDescriptors(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "rec") // short: unix socket paths are limited
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	ep := unix.Endpoint{Path: filepath.Join(dir, "qmp.sock")}
	ln, err := ep.Listen(ctx)
	require.NoError(t, err)
	defer ln.Close()
	rec, err := transcript.NewRecorder(io.Discard, transcript.RecorderConfig{Header: transcript.Header{Side: "server"}})
	require.NoError(t, err)
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	accepted := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			err = s.ServeConn(transcript.RecordConn(nc, rec))
		}
		accepted <- err
	}()
	c := qmpclient.NewClient(qmpclient.Config{Name: "fds"})
	require.NoError(t, c.ConnectDialer(ctx, ep))
	require.NoError(t, <-accepted)
	passPipe(ctx, t, c, s)
	require.NoError(t, c.Disconnect(ctx))
}
