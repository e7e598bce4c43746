package reactor

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

type clientStep struct {
	in   string   // a human frame, "call NAME [ARGS]", "flush", "eof"
	want []string // "frame: …" sent, "id N" returned by call, "callerr: …", or events
}

type clientCase struct {
	name  string
	cfg   ClientMachineConfig
	steps []clientStep
}

func runClientCase(t *testing.T, tc clientCase) *ClientMachine {
	c := NewClientMachine(tc.cfg)
	for i, st := range tc.steps {
		msg := fmt.Sprintf("step %d %q", i, st.in)
		var pre []string
		fields := strings.SplitN(st.in, " ", 3)
		switch fields[0] {
		case "call":
			req := Request{Name: fields[1]}
			if len(fields) == 3 {
				for k, v := range pyValue(t, fields[2]).(map[any]any) {
					if req.Args == nil {
						req.Args = map[hgcbor.Bytes]any{}
					}
					req.Args[k.(hgcbor.Bytes)] = v
				}
			}
			rid, err := c.CallCommand(req)
			if err != nil {
				pre = append(pre, "callerr: "+err.Error())
			} else {
				pre = append(pre, fmt.Sprintf("id %d", rid))
			}
		case "flush":
			if err := c.FlushCommands(); err != nil {
				pre = append(pre, "callerr: "+err.Error())
			}
		case "eof":
			c.FeedEOF()
		default:
			c.OnFrame(ffs(st.in))
		}
		sent, events := collect(c, describeResponse)
		checkStep(t, sent, append(pre, events...), st.want, msg)
	}
	return c
}

// TestClientReactorMercurialCases ports the behaviours of Mercurial's
// tests/test-wireproto-clientreactor.py.
func TestClientReactorMercurialCases(t *testing.T) {
	cases := []clientCase{
		{name: "single send", steps: []clientStep{
			{in: "call foo", want: []string{"id 1"}},
			{in: "flush", want: []string{"frame: 1 1 stream-begin command-request new cbor:{b'name': b'foo'}"}},
			{in: "call foo", want: []string{"callerr: reactor: cannot issue new commands"}},
			{in: "call foo", want: []string{"callerr: reactor: cannot issue new commands"}},
		}},
		{name: "no buffering", cfg: ClientMachineConfig{MultipleSends: true, Immediate: true}, steps: []clientStep{
			{in: "call command1", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'command1'}"}},
			{in: "flush"},
			{in: "call command2", want: []string{"id 3", "frame: 3 1 0 command-request new cbor:{b'name': b'command2'}"}},
		}},
		{name: "odd stream", steps: []clientStep{
			{in: "1 1 0 1 0 foo", want: []string{"error: reactor: received frame with odd numbered stream ID: 1"}},
		}},
		{name: "unknown stream", steps: []clientStep{
			{in: "1 0 0 1 0 foo", want: []string{"error: reactor: received frame on unknown stream without beginning of stream flag set"}},
		}},
		{name: "multiple response frames", cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
			{in: "call foo", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'foo'}"}},
			{in: "1 0 stream-begin command-response 0 foo", want: []string{"data 1  b'foo'"}},
			{in: "1 0 0 command-response eos bar", want: []string{"data 1 eos b'bar'"}},
		}},
		{name: "stream settings no flags", cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
			{in: "1 2 stream-begin stream-settings 0 ", want: []string{
				"error: reactor: stream encoding settings frame must have continuation or end of stream flag set"}},
		}},
		{name: "stream settings conflicting flags", cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
			{in: "1 2 stream-begin stream-settings continuation|eos ", want: []string{
				"error: reactor: stream encoding settings frame cannot have both continuation and end of stream flags set"}},
		}},
		{name: "stream settings empty payload", steps: []clientStep{
			{in: "1 2 stream-begin stream-settings eos ", want: []string{"error: reactor: stream encoding settings frame did not contain CBOR data"}},
		}},
		{name: "stream settings single object", cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
			{in: "call foo", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'foo'}"}},
			{in: `1 2 stream-begin stream-settings eos cbor:b"identity"`},
			{in: "1 2 encoded command-response eos plain", want: []string{"data 1 eos b'plain'"}},
		}},
		{name: "stream settings multiple objects", steps: []clientStep{
			{in: `1 2 stream-begin stream-settings eos Hidentity\xd9\x01\x02\x82CbarCfoo`, want: []string{
				"error: reactor: error setting stream decoder: identity decoder received unexpected additional values"}},
		}},
		{name: "stream settings multiple frames", steps: []clientStep{
			{in: `1 2 stream-begin stream-settings continuation Hid`},
			{in: `1 2 0 stream-settings eos entity`},
		}},
		{name: "stream settings invalid encoder", steps: []clientStep{
			{in: `1 2 stream-begin stream-settings eos cbor:b"badvalue"`, want: []string{
				"error: reactor: error setting stream decoder: unknown stream decoder: badvalue"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runClientCase(t, tc) })
	}
	t.Run("redirect request", func(t *testing.T) {
		c := NewClientMachine(ClientMachineConfig{Immediate: true})
		_, err := c.CallCommand(Request{Name: "foo", Redirect: pyValue(t, "{b'targets': [b'a', b'b'], b'hashes': [b'sha256']}")})
		require.NoError(t, err)
		sent, _ := collect(c, describeResponse)
		require.Equal(t, frameBytes("1 1 stream-begin command-request new cbor:{b'name': b'foo', b'redirect': {b'targets': [b'a', b'b'], b'hashes': [b'sha256']}}"), sent)
	})
}

func zlibBytes(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	_, err := w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestClientZlibSingleByteFrames(t *testing.T) {
	c := NewClientMachine(ClientMachineConfig{Immediate: true})
	_, err := c.CallCommand(Request{Name: "foo"})
	require.NoError(t, err)
	actiontest.Drain(c)
	c.OnFrame(ffs(`1 2 stream-begin stream-settings eos cbor:b"zlib"`))
	require.Empty(t, actiontest.Drain(c))
	encoded := frameBytes("0 1 0 command-data 0 cbor:{b'status': b'ok'}")[frame.HeaderSize:]
	compressed := zlibBytes(t, encoded)
	var got []byte
	for i := range compressed {
		c.OnFrame(frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagEncoded, Type: frame.TypeCommandResponse,
			Flags: frame.FlagCommandResponseContinuation, Payload: compressed[i : i+1]})
		for _, a := range actiontest.Drain(c) {
			require.Equal(t, action.KindDeliver, a.Kind)
			require.True(t, a.Value.More)
			got = append(got, a.Value.Data...)
		}
	}
	// Output comes as soon as it decodes: all of it is out before the
	// unencoded end of response.
	require.Equal(t, encoded, got)
	c.OnFrame(ffs("1 2 stream-end command-response eos "))
	acts := actiontest.Drain(c)
	require.Len(t, acts, 1)
	require.True(t, acts[0].Value.EOS)
	require.Empty(t, acts[0].Value.Data)
}

// TestClientOnPurposeDifferences covers where the client differs from
// Mercurial on purpose.
func TestClientOnPurposeDifferences(t *testing.T) {
	cases := []clientCase{
		{name: "differs: text output delivered", cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
			{in: "call foo", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'foo'}"}},
			{in: "1 2 stream-begin text-output 0 cbor:[{b'msg': b'hi'}]", want: []string{`text-output 1 b'\x81\xa1CmsgBhi'`}},
			{in: "1 2 0 progress 0 x", want: []string{"progress 1 b'x'"}},
			{in: "1 2 0 command-response eos ", want: []string{"data 1 eos b''"}},
		}},
		{name: "differs: error response delivered, connection carries on", cfg: ClientMachineConfig{Immediate: true, MultipleSends: true}, steps: []clientStep{
			{in: "call a", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'a'}"}},
			{in: "call b", want: []string{"id 3", "frame: 3 1 0 command-request new cbor:{b'name': b'b'}"}},
			{in: "1 2 stream-begin error-response 0 cbor:{b'type': b'server', b'message': [{b'msg': b'boom'}]}",
				want: []string{"errorresponse 1 server [{b'msg': b'boom'}]"}},
			{in: "3 2 0 command-response eos x", want: []string{"data 3 eos b'x'"}},
		}},
		{name: "differs: malformed error response is an error", cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
			{in: "call a", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'a'}"}},
			{in: `1 2 stream-begin error-response 0 \xa1`, want: []string{"error: reactor: error decoding CBOR from error response frame: " + decodeErrText(`\xa1`)}},
		}},
		{name: "differs: outstanding requests reported at input end", cfg: ClientMachineConfig{Immediate: true, MultipleSends: true}, steps: []clientStep{
			{in: "call a", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'a'}"}},
			{in: "call b", want: []string{"id 3", "frame: 3 1 0 command-request new cbor:{b'name': b'b'}"}},
			{in: "1 2 stream-begin command-response eos x", want: []string{"data 1 eos b'x'"}},
			{in: "eof", want: []string{"error: reactor: input ended with 1 partially received command requests: [3]"}},
		}},
		{name: "differs: error is terminal", steps: []clientStep{
			{in: "1 1 0 1 0 foo", want: []string{"error: reactor: received frame with odd numbered stream ID: 1"}},
			{in: "1 2 stream-begin command-response eos x", want: []string{"error: reactor: received frame with odd numbered stream ID: 1"}},
		}},
		{name: "differs: settings advertise encodings once", cfg: ClientMachineConfig{MultipleSends: true, ContentEncodings: []string{"zlib", "identity"}}, steps: []clientStep{
			{in: "call a", want: []string{"id 1"}},
			{in: "flush", want: []string{
				"frame: 1 1 stream-begin sender-protocol-settings eos cbor:{b'contentencodings': [b'zlib', b'identity']}",
				"frame: 1 1 0 command-request new cbor:{b'name': b'a'}"}},
			{in: "call b", want: []string{"id 3"}},
			{in: "flush", want: []string{"frame: 3 1 0 command-request new cbor:{b'name': b'b'}"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runClientCase(t, tc) })
	}
}

func TestClientCommandData(t *testing.T) {
	for _, n := range []int{0, 5, 32768, 32769, 70000} {
		c := NewClientMachine(ClientMachineConfig{Immediate: true})
		data := bytes.Repeat([]byte{'d'}, n)
		_, err := c.CallCommand(Request{Name: "push", Data: data})
		require.NoError(t, err)
		sent, _ := collect(c, describeResponse)
		frames := parseFrames(t, sent)
		require.Equal(t, frame.TypeCommandRequest, frames[0].Type)
		require.Equal(t, frame.FlagCommandRequestNew|frame.FlagCommandRequestExpectData, frames[0].Flags)
		got := []byte{}
		for i, f := range frames[1:] {
			require.Equal(t, frame.TypeCommandData, f.Type)
			last := i == len(frames)-2
			if last {
				require.Equal(t, frame.FlagCommandDataEOS, f.Flags, "n=%d", n)
			} else {
				require.Equal(t, frame.FlagCommandDataContinuation, f.Flags, "n=%d", n)
			}
			got = append(got, f.Payload...)
		}
		require.Equal(t, data, got)
		// A server reactor takes the frames back.
		s := NewServerMachine(ServerMachineConfig{})
		s.Feed(sent)
		a := s.Next()
		require.Equal(t, action.KindDeliver, a.Kind)
		require.Equal(t, data, a.Value.Data)
	}
}
