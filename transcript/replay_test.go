package transcript_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transcript"
)

func load(t testing.TB, name string) *transcript.Transcript {
	f, err := os.Open("testdata/" + name)
	require.NoError(t, err)
	defer f.Close()
	tr, err := transcript.Read(f)
	require.NoError(t, err)
	return tr
}

// describe renders what a client machine delivered, one line each.
func describe(rs []qmp.Received) []string {
	var out []string
	for _, r := range rs {
		switch r.Kind {
		case qmp.ReceivedKindEvent:
			out = append(out, "event "+r.Event.Name)
		case qmp.ReceivedKindReply:
			out = append(out, fmt.Sprintf("reply #%d %s", r.ID, r.Response.Return))
		default:
			out = append(out, r.Kind.String())
		}
	}
	return out
}

// stopCont is the automation under test: pause the VM, check it is paused,
// resume it.
func stopCont(c *qmp.ClientMachine) {
	c.Execute("stop", nil)
	c.Execute("query-status", nil)
	c.Execute("cont", nil)
}

func TestReplayServesAClientMachine(t *testing.T) {
	tr := load(t, "stop-cont.jsonl")
	for how, cut := range actiontest.Splits(40) {
		peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
		require.NoError(t, err)
		c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
		stopCont(c)
		got, matched := actiontest.Pump(c, peer, cut)
		require.NoError(t, got.Err(), how)
		// The recorded ids were 12..14; the client's are 1..3, and every
		// reply reached the command it answers.
		require.Equal(t, []string{"greeting", "ready",
			"event STOP", "reply #1 {}",
			`reply #2 {"status": "paused", "singlestep": false, "running": false}`,
			"event RESUME", "reply #3 {}"}, describe(got.Delivered()), how)
		require.Len(t, matched.Delivered(), 4, "capabilities, stop, query-status, cont")
		require.Equal(t, 4, matched.Delivered()[0].Line)
		require.NoError(t, matched.Err(), "the client closed the recorded connection: the peer waits for it")
		require.NoError(t, peer.Done())
		peer.FeedEOF()
		require.Equal(t, io.EOF, actiontest.Drain(peer).Err())
	}
}

// Where the server closed the stream, the peer ends by itself once the
// client did what was recorded before; the client machine then ends
// cleanly at its end of input.
func TestReplayEndsWhereTheServerClosed(t *testing.T) {
	tr, err := transcript.Read(strings.NewReader(`{"transcript":1,"protocol":"qmp"}
{"conn":1,"t":0,"ev":"open"}
{"conn":1,"t":0,"ev":"recv","text":"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}"}
{"conn":1,"t":0,"ev":"send","text":"{\"execute\": \"qmp_capabilities\", \"id\": 1}"}
{"conn":1,"t":0,"ev":"recv","text":"{\"return\": {}, \"id\": 1}"}
{"conn":1,"t":0,"ev":"send","text":"{\"execute\": \"quit\", \"id\": 2}"}
{"conn":1,"t":0,"ev":"recv","text":"{\"return\": {}, \"id\": 2}"}
{"conn":1,"t":0,"ev":"recv","text":"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}"}
{"conn":1,"t":0,"ev":"close","by":"peer","err":"peer closed the connection: EOF"}
`))
	require.NoError(t, err)
	peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	c.Execute("quit", nil)
	got, matched := actiontest.Pump(c, peer)
	require.Equal(t, []string{"greeting", "ready", "reply #1 {}", "event SHUTDOWN"}, describe(got.Delivered()))
	require.Equal(t, io.EOF, matched.Err(), "the server closed: the peer ends")
	require.NoError(t, peer.Done())
	c.FeedEOF()
	require.Equal(t, io.EOF, actiontest.Drain(c).Err())
}

func TestReplayRejectsACommandTheTranscriptDoesNotExpect(t *testing.T) {
	peer, err := transcript.NewQMPPeer(load(t, "stop-cont.jsonl"), transcript.PeerConfig{})
	require.NoError(t, err)
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	c.Execute("stop", nil)
	c.Execute("device_del", []byte(`{"id": "disk0"}`))
	got, matched := actiontest.Pump(c, peer)
	require.Equal(t, []string{"greeting", "ready", "event STOP", "reply #1 {}"}, describe(got.Delivered()),
		"what the transcript expects is served up to the stray command")
	err = matched.Err()
	require.ErrorIs(t, err, transcript.ErrMismatch)
	var me *transcript.MismatchError
	require.ErrorAs(t, err, &me)
	require.Equal(t, 9, me.Line)
	require.Equal(t, `transcript: line 9: the client sent a message the transcript does not expect
- expected: {"execute": "query-status", "id": 13}
+ actual:   {"execute": "device_del", "arguments": {"id": "disk0"}, "id": 2}
  arguments: not expected, got {"id":"disk0"}
  execute: expected "query-status", got "device_del"`, err.Error())
	var ue *transcript.UnfinishedError
	require.ErrorAs(t, peer.Done(), &ue)
	require.Equal(t, 9, ue.Line)
}

func TestReplayEndsWhenTheClientCloses(t *testing.T) {
	tr := load(t, "stop-cont.jsonl")
	peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	actiontest.Pump(c, peer)
	peer.FeedEOF()
	a := actiontest.Drain(peer)
	var me *transcript.MismatchError
	require.ErrorAs(t, a.Err(), &me, "the client closed while the transcript expects stop")
	require.Nil(t, me.Actual)
	require.Contains(t, me.Error(), "line 6: the client closed the stream where the transcript expects a message")
}

// In timed mode the peer holds what it recorded for later until its clock
// moves; the driver asks when the next message is due.
func TestReplayTimed(t *testing.T) {
	peer, err := transcript.NewQMPPeer(load(t, "stop-cont.jsonl"), transcript.PeerConfig{Timed: true})
	require.NoError(t, err)
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	got, _ := actiontest.Pump(c, peer)
	require.Empty(t, got.Delivered(), "the greeting was recorded at 212µs")
	due, held := peer.Due()
	require.True(t, held)
	require.Equal(t, 212*time.Microsecond, due)

	var all []qmp.Received
	for steps := 0; ; steps++ {
		require.Less(t, steps, 100)
		if due, held := peer.Due(); held {
			peer.Advance(due)
		} else if peer.Done() == nil {
			break
		}
		if c.State() == qmp.ClientStateRunning && c.Pending() == 0 && c.LastID() == 1 {
			stopCont(c)
		}
		got, matched := actiontest.Pump(c, peer)
		all = append(all, got.Delivered()...)
		if matched.Err() != nil {
			require.Equal(t, io.EOF, matched.Err())
			break
		}
	}
	require.Equal(t, []string{"greeting", "ready", "event STOP", "reply #2 {}",
		`reply #3 {"status": "paused", "singlestep": false, "running": false}`,
		"event RESUME", "reply #4 {}"}, describe(all))
	require.NoError(t, peer.Done())
}

func TestNewQMPPeerChecksTheTranscript(t *testing.T) {
	tr := load(t, "stop-cont.jsonl")
	_, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{Conn: 2})
	require.EqualError(t, err, "transcript: no connection 2 (the transcript holds [1])")

	bad, err := transcript.Read(strings.NewReader(`{"transcript":1}
{"conn":1,"t":0,"ev":"recv","text":"{\"QMP\": "}
{"conn":1,"t":0,"ev":"close"}`))
	require.NoError(t, err)
	_, err = transcript.NewQMPPeer(bad, transcript.PeerConfig{})
	require.ErrorContains(t, err, "connection 1 ends inside a message")

	bad, err = transcript.Read(strings.NewReader(`{"transcript":1}
{"conn":1,"t":0,"ev":"recv","text":"]"}`))
	require.NoError(t, err)
	_, err = transcript.NewQMPPeer(bad, transcript.PeerConfig{})
	var fe *transcript.FormatError
	require.True(t, errors.As(err, &fe), "%v", err)
	require.Equal(t, 2, fe.Line)
}

// The client's side of a transcript replays to a QMP server machine: a fake
// QEMU is tested against what a client once sent (event timestamps aside).
func TestReplayPlaysTheClientToAServerMachine(t *testing.T) {
	peer, err := transcript.NewQMPPeer(load(t, "stop-cont.jsonl"), transcript.PeerConfig{PlayClient: true})
	require.NoError(t, err)
	s := qmp.NewServerMachine(qmp.ServerMachineConfig{Version: qmp.Version{QEMU: qmp.VersionTriple{Major: 7, Minor: 2}}})
	status := `{"status": "paused", "singlestep": false, "running": false}`
	_, matched := actiontest.Pump(s, peer, actiontest.OnDeliver(s, func(cmd qmp.Command) {
		switch cmd.Name {
		case "stop":
			s.SendEvent("STOP", nil, time.Now())
			s.Return(cmd.ID, nil)
		case "cont":
			s.SendEvent("RESUME", nil, time.Now())
			s.Return(cmd.ID, nil)
		case "query-status":
			s.Return(cmd.ID, []byte(status))
		}
	}))
	require.Equal(t, io.EOF, matched.Err(), "the client closed the recorded connection, and so does the peer")
	require.NoError(t, peer.Done())
	require.Len(t, matched.Delivered(), 7, "the server's seven messages matched")
}
