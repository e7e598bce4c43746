package reactor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
)

type serverStep struct {
	in   string   // a human frame, "eof", "stream", "respond S R [objs]", "servererror S R msg", "commanderror S R msg"
	want []string // "frame: <human>" for frames sent; "run …", "error: reactor: …" for other actions; nil: WantMore
}

type serverCase struct {
	name  string
	cfg   ServerMachineConfig
	steps []serverStep
}

const okFrames = "frame: 1 2 stream-begin stream-settings eos cbor:b'identity'"

func runServerCase(t *testing.T, tc serverCase) *ServerMachine {
	r := NewServerMachine(tc.cfg)
	streams := map[int]*OutputStream{}
	for i, st := range tc.steps {
		msg := fmt.Sprintf("step %d %q", i, st.in)
		fields := strings.SplitN(st.in, " ", 4)
		switch fields[0] {
		case "eof":
			r.FeedEOF()
		case "stream":
			s := r.NewOutputStream()
			streams[int(s.ID())] = s
		case "respond", "servererror", "commanderror":
			sid, _ := strconv.Atoi(fields[1])
			rid, _ := strconv.Atoi(fields[2])
			var err error
			switch fields[0] {
			case "respond":
				objs, _ := pyValue(t, fields[3]).([]any)
				err = r.RespondObjects(streams[sid], uint16(rid), objs...)
			case "servererror":
				err = r.RespondServerError(streams[sid], uint16(rid), fields[3])
			default:
				err = r.RespondCommandError(streams[sid], uint16(rid), fields[3], nil)
			}
			if err != nil {
				require.Equal(t, []string{"callerr: " + err.Error()}, st.want, msg)
				continue
			}
		default:
			r.OnFrame(ffs(st.in))
		}
		sent, events := collect(r, describeCommand)
		checkStep(t, sent, events, st.want, msg)
	}
	return r
}

// TestServerReactorMercurialCases ports the behaviours of Mercurial's
// tests/test-wireproto-serverreactor.py, written against Mercurial 6.3
// (whose responses carry an identity stream-settings frame).
func TestServerReactorMercurialCases(t *testing.T) {
	cases := []serverCase{
		{name: "one frame command", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand'}",
				want: []string{"run 1 mycommand args={} redirect=None data=None"}},
			{in: "eof"},
		}},
		{name: "one argument", steps: []serverStep{
			{in: "41 1 stream-begin command-request new cbor:{b'name': b'mycommand', b'args': {b'foo': b'bar'}}",
				want: []string{"run 41 mycommand args={b'foo': b'bar'} redirect=None data=None"}},
		}},
		{name: "multiple arguments", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand', b'args': {b'foo': b'bar', b'biz': b'baz'}}",
				want: []string{"run 1 mycommand args={b'biz': b'baz', b'foo': b'bar'} redirect=None data=None"}},
		}},
		{name: "simple command data", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|have-data cbor:{b'name': b'mycommand'}"},
			{in: "1 1 0 command-data eos data!", want: []string{"run 1 mycommand args={} redirect=None data=b'data!'"}},
		}},
		{name: "multiple data frames", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|have-data cbor:{b'name': b'mycommand'}"},
			{in: "1 1 0 command-data continuation data1"},
			{in: "1 1 0 command-data continuation data2"},
			{in: "1 1 0 command-data eos data3", want: []string{"run 1 mycommand args={} redirect=None data=b'data1data2data3'"}},
		}},
		{name: "argument and data", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|have-data cbor:{b'name': b'command', b'args': {b'key': b'val', b'foo': b'bar'}}"},
			{in: "1 1 0 command-data continuation value1"},
			{in: "1 1 0 command-data eos value2", want: []string{"run 1 command args={b'foo': b'bar', b'key': b'val'} redirect=None data=b'value1value2'"}},
		}},
		{name: "new and continuation", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|continuation ",
				want: []string{"error: reactor: received command request frame with both new and continuation flags set"}},
		}},
		{name: "neither new nor continuation", steps: []serverStep{
			{in: "1 1 stream-begin command-request 0 ",
				want: []string{"error: reactor: received command request frame with neither new nor continuation flags set"}},
		}},
		{name: "unexpected command data", steps: []serverStep{
			{in: "1 1 stream-begin command-data 0 ignored",
				want: []string{"error: reactor: expected sender protocol settings or command request frame; got 2"}},
		}},
		{name: "unexpected command data receiving", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|more cbor:{b'name': b'ignored'}"},
			{in: "1 1 0 command-data eos ignored",
				want: []string{"error: reactor: received command data frame for request that is not expecting data: 1"}},
		}},
		{name: "conflicting request id allowed", steps: []serverStep{
			{in: "stream"},
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'command'}", want: []string{"run 1 command args={} redirect=None data=None"}},
			{in: "respond 2 1 [b'response1']", want: []string{okFrames,
				"frame: 1 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 1 2 encoded command-response continuation cbor:b'response1'",
				"frame: 1 2 0 command-response eos "}},
			{in: "1 1 0 command-request new cbor:{b'name': b'command'}", want: []string{"run 1 command args={} redirect=None data=None"}},
			{in: "respond 2 1 [b'response2']", want: []string{
				"frame: 1 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 1 2 encoded command-response continuation cbor:b'response2'",
				"frame: 1 2 0 command-response eos "}},
		}},
		{name: "conflicting request id", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|more cbor:{b'name': b'command'}"},
			{in: "1 1 0 command-request new cbor:{b'name': b'command1'}", want: []string{"error: reactor: request with ID 1 already received"}},
		}},
		{name: "interleaved commands", steps: []serverStep{
			{in: `1 1 stream-begin command-request new|more \xa2Dname`},
			{in: `3 1 0 command-request new|more \xa2Dname`},
			{in: `1 1 0 command-request continuation|more Hcommand1Dargs`},
			{in: `3 1 0 command-request continuation|more Hcommand3Dargs`},
			{in: `3 1 0 command-request continuation \xa2CbizCbazCkeyCval`,
				want: []string{"run 3 command3 args={b'biz': b'baz', b'key': b'val'} redirect=None data=None"}},
			{in: `1 1 0 command-request continuation \xa2CfooCbarDkey1Cval`,
				want: []string{"run 1 command1 args={b'foo': b'bar', b'key1': b'val'} redirect=None data=None"}},
		}},
		{name: "missing command data frame", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}"},
			{in: "3 1 0 command-request new cbor:{b'name': b'command2'}", want: []string{"run 3 command2 args={} redirect=None data=None"}},
		}},
		{name: "missing command data frame flags", steps: []serverStep{
			{in: "1 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}"},
			{in: "1 1 0 command-data 0 data", want: []string{"error: reactor: command data frame without flags"}},
		}},
		{name: "frame for non-receiving request", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'command1'}", want: []string{"run 1 command1 args={} redirect=None data=None"}},
			{in: "3 1 0 command-request new|have-data cbor:{b'name': b'command3'}"},
			{in: "5 1 0 command-data eos ignored", want: []string{"error: reactor: received frame for request that is not receiving: 5"}},
		}},
		{name: "simple response", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand'}", want: []string{"run 1 mycommand args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 1 [b'response']", want: []string{okFrames,
				"frame: 1 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 1 2 encoded command-response continuation cbor:b'response'",
				"frame: 1 2 0 command-response eos "}},
		}},
		{name: "multi frame response", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand'}", want: []string{"run 1 mycommand args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 1 [b'" + strings.Repeat("x", 32768) + strings.Repeat("y", 100) + "']", want: []string{okFrames,
				"frame: 1 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				`frame: 1 2 encoded command-response continuation Y\x80d`,
				"frame: 1 2 encoded command-response continuation " + strings.Repeat("x", 32768),
				"frame: 1 2 encoded command-response continuation " + strings.Repeat("y", 100),
				"frame: 1 2 0 command-response eos "}},
		}},
		{name: "server error", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand'}", want: []string{"run 1 mycommand args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "servererror 2 1 some message", want: []string{
				"frame: 1 2 stream-begin error-response 0 cbor:{b'type': b'server', b'message': [{b'msg': b'some message'}]}"}},
		}},
		{name: "deferred response", cfg: ServerMachineConfig{DeferOutput: true}, steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand'}", want: []string{"run 1 mycommand args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 1 [b'response']"},
			{in: "eof", want: []string{okFrames,
				"frame: 1 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 1 2 encoded command-response continuation cbor:b'response'",
				"frame: 1 2 0 command-response eos ",
				"error: EOF"}}, // every request answered: a clean end
		}},
		{name: "deferred request id tracking", cfg: ServerMachineConfig{DeferOutput: true}, steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'command1'}", want: []string{"run 1 command1 args={} redirect=None data=None"}},
			{in: "3 1 0 command-request new cbor:{b'name': b'command2'}", want: []string{"run 3 command2 args={} redirect=None data=None"}},
			{in: "5 1 0 command-request new cbor:{b'name': b'command3'}", want: []string{"run 5 command3 args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 3 [b'response3']"},
			{in: "respond 2 1 [b'response1']"},
			{in: "respond 2 5 [b'response5']"},
			{in: "eof", want: []string{okFrames[:len("frame: ")] + "3" + okFrames[len("frame: 1"):],
				"frame: 3 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 3 2 encoded command-response continuation cbor:b'response3'",
				"frame: 3 2 0 command-response eos ",
				"frame: 1 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 1 2 encoded command-response continuation cbor:b'response1'",
				"frame: 1 2 0 command-response eos ",
				"frame: 5 2 encoded command-response continuation cbor:{b'status': b'ok'}",
				"frame: 5 2 encoded command-response continuation cbor:b'response5'",
				"frame: 5 2 0 command-response eos ",
				"error: EOF"}}, // every request answered: a clean end
		}},
		{name: "duplicate request on active command", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'command1'}", want: []string{"run 1 command1 args={} redirect=None data=None"}},
			{in: "1 1 0 command-request new cbor:{b'name': b'command1'}", want: []string{"error: reactor: request with ID 1 is already active"}},
		}},
		{name: "duplicate request on active command not sent", cfg: ServerMachineConfig{DeferOutput: true}, steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'command1'}", want: []string{"run 1 command1 args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 1 [b'response']"},
			{in: "1 1 0 command-request new cbor:{b'name': b'command1'}", want: []string{"error: reactor: request with ID 1 is already active"}},
		}},
		{name: "duplicate request after send", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'command1'}", want: []string{"run 1 command1 args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 1 []"},
			{in: "1 1 0 command-request new cbor:{b'name': b'command1'}", want: []string{"run 1 command1 args={} redirect=None data=None"}},
		}},
		{name: "protocol settings no flags", steps: []serverStep{
			{in: "0 1 stream-begin sender-protocol-settings 0 ",
				want: []string{"error: reactor: sender protocol settings frame must have continuation or end of stream flag set"}},
		}},
		{name: "protocol settings conflicting flags", steps: []serverStep{
			{in: "0 1 stream-begin sender-protocol-settings continuation|eos ",
				want: []string{"error: reactor: sender protocol settings frame cannot have both continuation and end of stream flags set"}},
		}},
		{name: "protocol settings empty payload", steps: []serverStep{
			{in: "0 1 stream-begin sender-protocol-settings eos ",
				want: []string{"error: reactor: sender protocol settings frame did not contain CBOR data"}},
		}},
		{name: "protocol settings multiple objects", steps: []serverStep{
			{in: `0 1 stream-begin sender-protocol-settings eos \x46foobar\x43foo`,
				want: []string{"error: reactor: sender protocol settings frame contained multiple CBOR values"}},
		}},
		{name: "protocol settings content encodings", steps: []serverStep{
			{in: `0 1 stream-begin sender-protocol-settings eos cbor:{b"contentencodings": [b"a", b"zlib"]}`},
			{in: "1 1 0 command-request new cbor:{b'name': b'x'}", want: []string{"run 1 x args={} redirect=None data=None"}},
		}},
		{name: "protocol settings multiple frames", steps: []serverStep{
			{in: `0 1 stream-begin sender-protocol-settings continuation \xa1Pcontentencod`},
			{in: `0 1 0 sender-protocol-settings eos ings\x82Fvalue1Fvalue2`},
			{in: "1 1 0 command-request new cbor:{b'name': b'x'}", want: []string{"run 1 x args={} redirect=None data=None"}},
		}},
		{name: "protocol settings not initial", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'mycommand'}", want: []string{"run 1 mycommand args={} redirect=None data=None"}},
			{in: "0 1 0 sender-protocol-settings eos ", want: []string{"error: reactor: expected command request frame; got 8"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runServerCase(t, tc) })
	}
}

// TestServerOnPurposeDifferences covers where we differ from Mercurial on
// purpose, each case named for what we do instead.
func TestServerOnPurposeDifferences(t *testing.T) {
	cases := []serverCase{
		{name: "differs: partially received requests are limited", cfg: ServerMachineConfig{MaxPendingRequests: 2}, steps: []serverStep{
			{in: "1 1 stream-begin command-request new|more cbor:{b'name': b'a'}"},
			{in: "3 1 0 command-request new|have-data cbor:{b'name': b'b'}"},
			{in: "5 1 0 command-request new|more cbor:{b'name': b'c'}",
				want: []string{"error: reactor: request 5: partially received requests: 3 exceeds the limit of 2"}},
		}},
		{name: "differs: bytes buffered per request are limited", cfg: ServerMachineConfig{MaxRequestBytes: 24}, steps: []serverStep{
			{in: "1 1 stream-begin command-request new|have-data cbor:{b'name': b'push'}"},
			{in: "1 1 0 command-data continuation 0123456789"},
			{in: "1 1 0 command-data continuation 0123456789",
				want: []string{"error: reactor: request 1: request bytes: 31 exceeds the limit of 24"}},
		}},
		{name: "differs: request payload spanning frames is limited", cfg: ServerMachineConfig{MaxRequestBytes: 8}, steps: []serverStep{
			{in: "1 1 stream-begin command-request new|more 12345"},
			{in: "1 1 0 command-request continuation|more 12345",
				want: []string{"error: reactor: request 1: request bytes: 10 exceeds the limit of 8"}},
		}},
		{name: "differs: partial requests reported at input end", steps: []serverStep{
			{in: "3 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}"},
			{in: "1 1 0 command-request new|more cbor:{b'name': b'command1'}"},
			{in: "eof", want: []string{"error: reactor: input ended with 2 partially received command requests: [1 3]"}},
		}},
		{name: "differs: even request id rejected", steps: []serverStep{
			{in: "2 1 stream-begin command-request new cbor:{b'name': b'x'}",
				want: []string{"error: reactor: received command request with even request ID: 2"}},
		}},
		{name: "differs: malformed request CBOR is an error", steps: []serverStep{
			{in: `1 1 stream-begin command-request new \xa1`,
				want: []string{"error: reactor: error decoding CBOR from command request: " + decodeErrText(`\xa1`)}},
		}},
		{name: "differs: error is terminal", steps: []serverStep{
			{in: "stream"},
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'x'}", want: []string{"run 1 x args={} redirect=None data=None"}},
			{in: "1 1 0 command-request 0 ",
				want: []string{"error: reactor: received command request frame with neither new nor continuation flags set"}},
			{in: "respond 2 1 [b'late']", want: []string{"callerr: reactor: respond to request 1 after an error: reactor: received command request frame with neither new nor continuation flags set"}},
			{in: "1 1 0 command-request new cbor:{b'name': b'x'}",
				want: []string{"error: reactor: received command request frame with neither new nor continuation flags set"}},
			{in: "eof",
				want: []string{"error: reactor: received command request frame with neither new nor continuation flags set"}},
		}},
		{name: "differs: response to inactive request refused", steps: []serverStep{
			{in: "1 1 stream-begin command-request new cbor:{b'name': b'x'}", want: []string{"run 1 x args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 3 [b'x']", want: []string{"callerr: reactor: respond to request 3: request is not active"}},
			{in: "respond 2 1 []"},
			{in: "servererror 2 1 again", want: []string{"callerr: reactor: respond to request 1: request is not active"}},
		}},
		{name: "differs: unknown encodings get an unencoded response", steps: []serverStep{
			{in: "0 1 stream-begin sender-protocol-settings eos cbor:{b'contentencodings': [b'br']}"},
			{in: "1 1 0 command-request new cbor:{b'name': b'x'}", want: []string{"run 1 x args={} redirect=None data=None"}},
			{in: "stream"},
			{in: "respond 2 1 [b'response']", want: []string{
				"frame: 1 2 stream-begin command-response continuation cbor:{b'status': b'ok'}",
				"frame: 1 2 0 command-response continuation cbor:b'response'",
				"frame: 1 2 0 command-response eos "}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runServerCase(t, tc) })
	}
}

func decodeErrText(payload string) string {
	f := ffs("1 1 0 command-data 0 " + payload)
	_, err := decodeAll(f.Payload)
	return err.Error()
}

func TestServerErrorsAreTyped(t *testing.T) {
	r := NewServerMachine(ServerMachineConfig{MaxPendingRequests: 1})
	r.OnFrame(ffs("1 1 stream-begin command-request new|more cbor:{b'name': b'a'}"))
	r.OnFrame(ffs("3 1 0 command-request new|more cbor:{b'name': b'b'}"))
	a := r.Next()
	require.Equal(t, action.KindError, a.Kind)
	var re *RequestError
	require.ErrorAs(t, a.Err, &re)
	require.ErrorIs(t, a.Err, action.ErrLimit)
	require.Equal(t, uint16(3), re.RequestID)
	var le *action.LimitError
	require.ErrorAs(t, a.Err, &le)
	require.Equal(t, action.LimitError{What: "partially received requests", Size: 2, Limit: 1}, *le)

	r = NewServerMachine(ServerMachineConfig{})
	r.Feed([]byte{0, 0, 0, 1, 0, 1, 1, 0xf0})
	a = r.Next()
	require.Equal(t, action.KindError, a.Kind)
	require.ErrorIs(t, a.Err, ErrProtocol)
	var he *frame.HeaderError
	require.ErrorAs(t, a.Err, &he)
	require.True(t, strings.HasPrefix(a.Err.Error(), "reactor: error reading frame: "), a.Err.Error())
	require.Equal(t, a, r.Next(), "terminal")

	r = NewServerMachine(ServerMachineConfig{})
	r.Feed(frameBytes("1 1 stream-begin command-request new cbor:{b'name': b'a'}")[:9])
	r.FeedEOF()
	a = r.Next()
	require.Equal(t, action.KindError, a.Kind)
	require.True(t, errors.Is(a.Err, ErrProtocol))
}

func TestServerFeedAnySplit(t *testing.T) {
	wire := frameBytes(
		"1 1 stream-begin command-request new|have-data cbor:{b'name': b'push', b'args': {b'k': b'v'}}",
		"3 1 0 command-request new cbor:{b'name': b'heads'}",
		"1 1 0 command-data continuation abc",
		"1 1 0 command-data eos def",
	)
	for cut := 0; cut <= len(wire); cut++ {
		r := NewServerMachine(ServerMachineConfig{})
		var events []string
		for _, part := range [][]byte{wire[:cut], wire[cut:]} {
			r.Feed(part)
			_, ev := collect(r, describeCommand)
			events = append(events, ev...)
		}
		r.FeedEOF()
		_, ev := collect(r, describeCommand)
		events = append(events, ev...)
		require.Equal(t, []string{
			"run 3 heads args={} redirect=None data=None",
			"run 1 push args={b'k': b'v'} redirect=None data=b'abcdef'",
		}, events, "cut at %d", cut)
	}
}

// TestServerStateAfterError: once the reactor has reported an Error its
// state is errored, whichever path the error came by: a header the frame
// decoder rejects, input ending inside a frame, requests left partial at
// EOF, a frame handed over directly that breaks the protocol.
func TestServerStateAfterError(t *testing.T) {
	cases := map[string]func(r *ServerMachine){
		"bad header fed": func(r *ServerMachine) { r.Feed([]byte{0, 0, 0, 1, 0, 1, 1, 0xf0}) },
		"truncated frame fed": func(r *ServerMachine) {
			r.Feed(frameBytes("1 1 stream-begin command-request new cbor:{b'name': b'a'}")[:9])
			r.FeedEOF()
		},
		"partial request at EOF, fed": func(r *ServerMachine) {
			r.Feed(frameBytes("1 1 stream-begin command-request new|more cbor:{b'name': b'a'}"))
			r.FeedEOF()
		},
		"partial request at EOF, framed": func(r *ServerMachine) {
			r.OnFrame(ffs("1 1 stream-begin command-request new|more cbor:{b'name': b'a'}"))
			r.FeedEOF()
		},
		"protocol error framed": func(r *ServerMachine) { r.OnFrame(ffs("1 2 stream-begin command-request new ")) },
		"protocol error fed":    func(r *ServerMachine) { r.Feed(frameBytes("1 2 stream-begin command-request new ")) },
	}
	for name, input := range cases {
		r := NewServerMachine(ServerMachineConfig{})
		input(r)
		got := actiontest.Drain[Command](r)
		require.NotEmpty(t, got, name)
		require.Equal(t, action.KindError, got[len(got)-1].Kind, name)
		require.Equal(t, ServerStateErrored, r.State(), name)
	}
}
