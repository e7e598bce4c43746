package transcript_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
)

// fakeClock advances by step at every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Unix(1700000000, 0)
	return func() time.Time { t = t.Add(step); return t }
}

func TestRecorderWritesTheDocumentedFormat(t *testing.T) {
	var buf bytes.Buffer
	rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{
		Header: transcript.Header{Protocol: "qmp", Note: "a <test>"}, SplitJSON: true, Now: fakeClock(time.Millisecond)})
	require.NoError(t, err)
	rec.Inbound([]byte(`{"QMP": {}}` + "\r\n" + `{"ev`)) // one message and the start of the next
	rec.Inbound([]byte(`ent": "STOP"}`))
	rec.Outbound([]byte(`{"execute": "x", "id": 1}{"execute": "y", "id": 2}`)) // two in one Send
	rec.PassFDs(1)
	rec.Outbound([]byte("}"))
	rec.End(fmt.Errorf("boom: %w", io.EOF))
	rec.Outbound([]byte("\xff\x00")) // a second connection; bad JSON is noted
	rec.End(nil)
	require.NoError(t, rec.Err())
	require.Equal(t, `{"transcript":1,"protocol":"qmp","side":"client","note":"a <test>"}
{"conn":1,"t":0.001,"ev":"open"}
{"conn":1,"t":0.001,"ev":"recv","text":"{\"QMP\": {}}"}
{"conn":1,"t":0.002,"ev":"recv","text":"{\"event\": \"STOP\"}"}
{"conn":1,"t":0.003,"ev":"send","text":"{\"execute\": \"x\", \"id\": 1}"}
{"conn":1,"t":0.004,"ev":"send","text":"{\"execute\": \"y\", \"id\": 2}"}
{"conn":1,"t":0.005,"ev":"send","fds":1}
{"conn":1,"t":0.006,"ev":"send","err":"jsonstream: json syntax error at offset 50: invalid character '}' looking for a value"}
{"conn":1,"t":0.007,"ev":"close","by":"peer","err":"boom: EOF"}
{"conn":2,"t":0.008,"ev":"open"}
{"conn":2,"t":0.008,"ev":"send","err":"jsonstream: json syntax error at offset 0: invalid character 0xff looking for a value"}
{"conn":2,"t":0.009,"ev":"close"}
`, buf.String())

	tr, err := transcript.Read(&buf)
	require.NoError(t, err)
	require.Equal(t, "qmp", tr.Header.Protocol)
	require.Len(t, tr.Entries, 11)
	require.Equal(t, []int{1, 2}, tr.Conns())
	require.Equal(t, 3, tr.Entries[1].Line)
	require.Equal(t, 2*time.Millisecond, tr.Entries[2].Time())
}

func TestRecorderKeepsRawChunksAndBinary(t *testing.T) {
	var buf bytes.Buffer
	rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{Now: fakeClock(time.Microsecond)})
	require.NoError(t, err)
	rec.Inbound([]byte("half a"))
	rec.Outbound([]byte{0xff, 0, 'x'})
	rec.End(nil)
	require.Equal(t, `{"transcript":1,"side":"client"}
{"conn":1,"t":0.000001,"ev":"open"}
{"conn":1,"t":0.000001,"ev":"recv","text":"half a"}
{"conn":1,"t":0.000002,"ev":"send","base64":"/wB4"}
{"conn":1,"t":0.000003,"ev":"close"}
`, buf.String())
	tr, err := transcript.Read(&buf)
	require.NoError(t, err)
	require.Equal(t, []byte{0xff, 0, 'x'}, tr.Entries[2].Bytes())
	require.Equal(t, []byte("half a"), tr.Entries[1].Bytes())
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n--; w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestRecorderReportsTheFirstWriteError(t *testing.T) {
	rec, err := transcript.NewRecorder(&failingWriter{n: 2}, transcript.RecorderConfig{})
	require.NoError(t, err)
	rec.Inbound([]byte("a"))
	rec.Inbound([]byte("b"))
	rec.End(nil)
	require.EqualError(t, rec.Err(), "transcript: disk full")
	_, err = transcript.NewRecorder(&failingWriter{}, transcript.RecorderConfig{})
	require.EqualError(t, err, "transcript: disk full")
}

func TestReadRejectsMalformedLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "transcript: line 1: no header"},
		{`{"transcript":2}`, "transcript: line 1: header: version 2, want 1"},
		{`{"transcript":1,"side":"middle"}`, `transcript: line 1: header: side "middle" is neither client nor server`},
		{`nonsense`, "transcript: line 1: header: invalid character 'o' in literal null (expecting 'u')"},
		{"{\"transcript\":1}\n{\"conn\":1,\"t\":0,\"ev\":\"sent\"}", `transcript: line 2: unknown ev "sent"`},
		{"{\"transcript\":1}\n\n{\"conn\":0,\"t\":0,\"ev\":\"open\"}", "transcript: line 3: conn 0 is below 1"},
		{"{\"transcript\":1}\n{\"conn\":1,\"t\":-1,\"ev\":\"open\"}", "transcript: line 2: time -1 is not a non-negative number of seconds"},
		{"{\"transcript\":1}\n{\"conn\":1,\"t\":0,\"ev\":\"send\",\"text\":\"a\",\"base64\":\"YQ==\"}", "transcript: line 2: more than one of text, base64 and frame"},
		{"{\"transcript\":1}\n{\"conn\":1,\"t\":0,\"ev\":\"send\",\"fds\":-1}", "transcript: line 2: fds -1 is negative"},
		{"{\"transcript\":1}\n{\"conn\":1,", "transcript: line 2: unexpected end of JSON input"},
		{"{\"transcript\":1}\n{\"conn\":1,\"t\":0,\"ev\":\"open\",\"by\":\"peer\"}", `transcript: line 2: by "peer" on a open entry`},
	} {
		_, err := transcript.Read(strings.NewReader(tc.in))
		require.EqualError(t, err, tc.want, tc.in)
		require.ErrorIs(t, err, transcript.ErrFormat)
	}
	_, err := transcript.Read(strings.NewReader("{\"transcript\":1}\n" + strings.Repeat(" ", transcript.MaxLine+1)))
	require.EqualError(t, err, "transcript: line 2: line longer than 67108864 bytes")
}

// A session with a fake QEMU is recorded through the transport's hooks, and
// the transcript then replays the same exchange with no socket.
func TestRecordARealSessionThenReplayIt(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the server's own cleanup
	srv := qmptest.StartUnix(t, qmptest.Config{})
	path := strings.TrimPrefix(srv.Addr(), "unix:")

	var buf bytes.Buffer
	rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{Header: transcript.Header{Protocol: "qmp"}, SplitJSON: true})
	require.NoError(t, err)
	sess := transport.New(transport.Config[qmp.Received, *qmp.ClientMachine]{
		NewMachine: func() *qmp.ClientMachine { return qmp.NewClientMachine(qmp.ClientMachineConfig{}) },
		OnInbound:  rec.Inbound,
		OnOutbound: rec.Outbound,
		OnEnd:      rec.End,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, sess.Connect(ctx, transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	})))
	var live []qmp.Received
	for len(live) < 2 { // greeting, ready: then the automation runs
		r, err := sess.Recv(ctx)
		require.NoError(t, err)
		live = append(live, r)
	}
	require.NoError(t, sess.Do(ctx, func(m *qmp.ClientMachine) error { stopCont(m); return nil }))
	for len(live) < 2+2+3 { // STOP, RESUME and three replies
		r, err := sess.Recv(ctx)
		require.NoError(t, err)
		live = append(live, r)
	}
	require.NoError(t, sess.Disconnect(ctx))
	require.NoError(t, rec.Err())

	tr, err := transcript.Read(&buf)
	require.NoError(t, err)
	peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	handshake, _ := actiontest.Pump(c, peer)
	stopCont(c)
	replayed, matched := actiontest.Pump(c, peer)
	require.NoError(t, replayed.Err())
	require.Equal(t, describe(live), describe(append(handshake.Delivered(), replayed.Delivered()...)))
	require.NoError(t, matched.Err(), "the client closed the recorded connection: the peer waits for it")
	require.NoError(t, peer.Done())
	peer.FeedEOF()
	require.Equal(t, io.EOF, actiontest.Drain(peer).Err())
}

// RecordConn records what crosses a connection and who ended it.
func TestRecordConn(t *testing.T) {
	for _, peerCloses := range []bool{false, true} {
		var buf bytes.Buffer
		rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{Now: fakeClock(time.Millisecond)})
		require.NoError(t, err)
		mine, theirs := net.Pipe()
		c := transcript.RecordConn(mine, rec)
		go func() {
			p := make([]byte, 4)
			n, _ := theirs.Read(p)
			theirs.Write(p[:n])
			if peerCloses {
				theirs.Close()
			}
		}()
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		p := make([]byte, 4)
		_, err = io.ReadFull(c, p)
		require.NoError(t, err)
		if peerCloses {
			_, err = c.Read(p)
			require.Equal(t, io.EOF, err)
		}
		require.NoError(t, c.Close())
		theirs.Close()
		require.NoError(t, rec.Err())
		tr, err := transcript.Read(&buf)
		require.NoError(t, err)
		require.Len(t, tr.Entries, 4)
		require.Equal(t, "ping", tr.Entries[1].Text)
		require.Equal(t, transcript.EvSend, tr.Entries[1].Ev)
		require.Equal(t, transcript.EvRecv, tr.Entries[2].Ev)
		end := tr.Entries[3]
		require.Equal(t, transcript.EvClose, end.Ev)
		if peerCloses {
			require.Equal(t, "peer", end.By)
		} else {
			require.Equal(t, "", end.By)
			require.Equal(t, "closed by the recording side", end.Err)
		}
	}
}
