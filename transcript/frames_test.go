package transcript_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/reactor"
	"github.com/wirereactor/wirereactor/transcript"
)

func newHgClient() *reactor.ClientMachine {
	return reactor.NewClientMachine(reactor.ClientMachineConfig{MultipleSends: true, Immediate: true})
}

// heads is the client's automation: ask for heads and a lookup.
func heads(c *reactor.ClientMachine, key string) {
	c.CallCommand(reactor.Request{Name: "heads"})
	c.CallCommand(reactor.Request{Name: "lookup", Args: map[hgcbor.Bytes]any{"key": []byte(key)}})
}

// responses renders what a client reactor delivered.
func responses(rs []reactor.Response) []string {
	var out []string
	for _, r := range rs {
		vals, _ := hgcbor.DecodeAll(r.Data)
		out = append(out, fmt.Sprintf("%d %v eos=%v %s", r.RequestID, r.Kind, r.EOS, hgcbor.PythonLiteral(vals)))
	}
	return out
}

// recordHg runs a client reactor against a server reactor in memory, the
// client tapped by a recorder splitting frames, and returns the transcript
// and what the client got.
func recordHg(t *testing.T) (string, []string) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{SplitFrames: true,
		Header: transcript.Header{Protocol: "hgframe"}, Now: func() time.Time { now = now.Add(time.Millisecond); return now }})
	require.NoError(t, err)
	client := newHgClient()
	tapped := transcript.Tap[reactor.Response](client, rec)
	server := reactor.NewServerMachine(reactor.ServerMachineConfig{})
	var out *reactor.OutputStream
	heads(client, "tip")
	got, _ := actiontest.Pump(tapped, server, actiontest.OnDeliver(server, func(cmd reactor.Command) {
		if out == nil {
			out = server.NewOutputStream()
		}
		if cmd.Name == "heads" {
			server.RespondObjects(out, cmd.RequestID, []any{[]byte("0123abcd")})
		} else {
			server.RespondCommandError(out, cmd.RequestID, "unknown key %s", []any{[]byte("tip")})
		}
	}))
	require.NoError(t, got.Err())
	rec.End(nil)
	require.NoError(t, rec.Err())
	return buf.String(), responses(got.Delivered())
}

func TestFrameTranscriptReadsInHumanSyntax(t *testing.T) {
	text, _ := recordHg(t)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	require.Equal(t, `{"transcript":1,"protocol":"hgframe","side":"client"}`, lines[0])
	require.Equal(t, `{"conn":1,"t":0.001,"ev":"send","frame":"1 1 stream-begin command-request new cbor:{b'name': b'heads'}"}`, lines[2])
	require.Contains(t, text, `"ev":"recv","frame":"1 2 stream-begin stream-settings eos cbor:b'identity'"`)
	require.Equal(t, `{"conn":1,"t":0.008,"ev":"close"}`, lines[len(lines)-1])
}

func TestFrameReplayServesAClientReactor(t *testing.T) {
	text, live := recordHg(t)
	tr, err := transcript.Read(strings.NewReader(text))
	require.NoError(t, err)
	for how, cut := range actiontest.Splits(30) {
		peer, err := transcript.NewFramePeer(tr, transcript.PeerConfig{})
		require.NoError(t, err)
		c := newHgClient()
		heads(c, "tip")
		got, matched := actiontest.Pump(c, peer, cut)
		require.NoError(t, got.Err(), how)
		require.Equal(t, live, responses(got.Delivered()), how)
		require.Len(t, matched.Delivered(), 2, how)
		require.NoError(t, peer.Done(), how)
		peer.FeedEOF()
		require.Equal(t, io.EOF, actiontest.Drain(peer).Err(), how)
	}
}

func TestFrameReplayRejectsAnotherRequest(t *testing.T) {
	text, _ := recordHg(t)
	tr, err := transcript.Read(strings.NewReader(text))
	require.NoError(t, err)
	peer, err := transcript.NewFramePeer(tr, transcript.PeerConfig{})
	require.NoError(t, err)
	c := newHgClient()
	heads(c, "default")
	_, matched := actiontest.Pump(c, peer)
	require.ErrorIs(t, matched.Err(), transcript.ErrMismatch)
	require.Equal(t, `transcript: line 4: the client sent a message the transcript does not expect
- expected: 3 1 0 command-request new cbor:{b'args': {b'key': b'tip'}, b'name': b'lookup'}
+ actual:   3 1 0 command-request new cbor:{b'args': {b'key': b'default'}, b'name': b'lookup'}
  payload: expected cbor:{b'args': {b'key': b'tip'}, b'name': b'lookup'}, got cbor:{b'args': {b'key': b'default'}, b'name': b'lookup'}`, matched.Err().Error())
}

// Frames whose payload is not one canonical CBOR value are written with
// their payload as escaped bytes, and read back the same.
func TestFrameEntriesReadBackExactly(t *testing.T) {
	frames := []frame.Frame{
		{RequestID: 1, StreamID: 1, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeCommandData, Flags: frame.FlagCommandDataEOS, Payload: []byte("cbor:not really\\ \x00\xff\n")},
		{RequestID: 65535, StreamID: 255, StreamFlags: frame.StreamFlagEnd | frame.StreamFlagEncoded, Type: frame.TypeCommandResponse, Flags: 0, Payload: []byte{0x9f, 0x01, 0xff}}, // indefinite array
		{RequestID: 2, StreamID: 2, Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseEOS, Payload: nil},
	}
	var wire []byte
	for _, f := range frames {
		wire = f.Append(wire)
	}
	var buf bytes.Buffer
	rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{SplitFrames: true})
	require.NoError(t, err)
	rec.Inbound(wire[:5])
	rec.Inbound(wire[5:])
	rec.Inbound([]byte{1, 2, 3, 4, 5, 6, 7, 0xf0, 9}) // not a frame: recorded as read from here
	rec.Inbound([]byte("rest"))
	rec.End(nil)
	text := buf.String()
	tr, err := transcript.Read(&buf)
	require.NoError(t, err, text)
	var back []byte
	for _, e := range tr.Entries[1:4] {
		require.NotEmpty(t, e.Frame, "%+v", e)
		back = append(back, e.Bytes()...)
	}
	require.Equal(t, wire, back)
	require.NotEmpty(t, tr.Entries[4].Err, "the bad header is noted")
	require.Equal(t, "rest", tr.Entries[5].Text)
	require.Contains(t, text, `"frame":"1 1 stream-begin command-data eos \\x63bor:not really\\\\ \\x00\\xff\\x0a"`)
}

var _ action.Machine[reactor.Response] = (*reactor.ClientMachine)(nil)

// The client's side of the same transcript replays to a server reactor: a
// server application is tested against what a client once sent.
func TestFrameReplayPlaysTheClientToAServerReactor(t *testing.T) {
	text, _ := recordHg(t)
	tr, err := transcript.Read(strings.NewReader(text))
	require.NoError(t, err)
	run := func(lookup string) (actiontest.Actions[transcript.Matched], *transcript.Peer) {
		peer, err := transcript.NewFramePeer(tr, transcript.PeerConfig{PlayClient: true})
		require.NoError(t, err)
		server := reactor.NewServerMachine(reactor.ServerMachineConfig{})
		var out *reactor.OutputStream
		_, matched := actiontest.Pump(server, peer, actiontest.OnDeliver(server, func(cmd reactor.Command) {
			if out == nil {
				out = server.NewOutputStream()
			}
			if cmd.Name == "heads" {
				server.RespondObjects(out, cmd.RequestID, []any{[]byte("0123abcd")})
			} else {
				server.RespondCommandError(out, cmd.RequestID, lookup, []any{[]byte("tip")})
			}
		}))
		return matched, peer
	}
	matched, peer := run("unknown key %s")
	require.Equal(t, io.EOF, matched.Err(), "the client closed the connection: so does the peer playing it")
	require.NoError(t, peer.Done())

	matched, _ = run("no such key %s") // the server application changed
	require.ErrorIs(t, matched.Err(), transcript.ErrMismatch)
	require.Contains(t, matched.Err().Error(), "the server sent a message the transcript does not expect")
	require.Contains(t, matched.Err().Error(), "no such key")
}
