package framing

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// decodeFrames decodes wire with a default decoder and returns cloned frames.
func decodeFrames(t *testing.T, wire []byte) []frame.Frame {
	t.Helper()
	got, err := decodeSplit(t, NewDecoder(DecoderConfig{MaxPayload: frame.MaxPayload}), wire, nil)
	require.NoError(t, err)
	return got
}

func TestStreamConfigLimits(t *testing.T) {
	cases := []struct {
		cfg   OutputStreamConfig
		split int
		hard  int
	}{
		{OutputStreamConfig{}, 32768, 65535},
		{OutputStreamConfig{MaxFramePayload: -5}, 32768, 65535},
		{OutputStreamConfig{MaxFramePayload: 1}, 1, 65535},
		{OutputStreamConfig{MaxFramePayload: 65535}, 65535, 65535},
		{OutputStreamConfig{MaxFramePayload: 65536}, 65535, 65535},
		{OutputStreamConfig{MaxFramePayload: 1 << 30}, 65535, 65535},
		{OutputStreamConfig{MaxFramePayload: 65536, AllowLargePayloads: true}, 65536, frame.MaxPayload},
		{OutputStreamConfig{MaxFramePayload: 1 << 30, AllowLargePayloads: true}, frame.MaxPayload, frame.MaxPayload},
		{OutputStreamConfig{AllowLargePayloads: true}, 32768, frame.MaxPayload},
	}
	for _, tc := range cases {
		s := NewOutputStream(1, tc.cfg)
		require.Equal(t, tc.split, s.MaxFramePayload(), "%+v", tc.cfg)
		require.Equal(t, tc.hard, s.hard, "%+v", tc.cfg)
	}
}

// Mercurial 6.3 misreads lengths of 65536 and more, so a stream refuses to
// send them unless told the peer reads them right.
func TestAppendFrameHardLimit(t *testing.T) {
	for _, size := range []int{0, 1, 65535, 65536, 100000} {
		for _, allow := range []bool{false, true} {
			s := NewOutputStream(3, OutputStreamConfig{AllowLargePayloads: allow})
			payload := pattern(size)
			out, err := s.AppendFrame([]byte("x"), 7, frame.TypeProgress, 0, payload, false)
			if size >= frame.MercurialSafePayload && !allow {
				require.EqualError(t, err, "framing: progress payload bytes: "+strconv.Itoa(size)+" exceeds the limit of 65535 (does not fit in one frame)")
				var tooLarge *action.LimitError
				require.ErrorAs(t, err, &tooLarge)
				require.Equal(t, action.LimitError{What: "progress payload bytes", Size: int64(size), Limit: 65535}, *tooLarge)
				require.Equal(t, []byte("x"), out)
				require.False(t, s.Active(), "a refused frame does not begin the stream")
				continue
			}
			require.NoError(t, err)
			got := decodeFrames(t, out[1:])
			require.Len(t, got, 1)
			require.Equal(t, frame.Frame{RequestID: 7, StreamID: 3, StreamFlags: frame.StreamFlagBegin,
				Type: frame.TypeProgress, Payload: payload}.String(), got[0].String())
			require.True(t, bytes.Equal(payload, got[0].Payload))
		}
	}
}

func TestEncodedFrameNeedsSettings(t *testing.T) {
	s := NewOutputStream(2, OutputStreamConfig{})
	out, err := s.AppendFrame(nil, 1, frame.TypeCommandResponse, frame.FlagCommandResponseContinuation, []byte("x"), true)
	require.ErrorIs(t, err, ErrNoStreamSettings)
	require.Empty(t, out)
	require.False(t, s.Active())

	s.SetEncoder(IdentityEncoder{})
	out, err = s.AppendStreamSettings(nil, 1)
	require.NoError(t, err)
	require.True(t, s.SettingsSent())
	again, err := s.AppendStreamSettings(out, 1)
	require.NoError(t, err)
	require.Equal(t, out, again, "settings go out once")
	out, err = s.AppendFrame(out, 1, frame.TypeCommandResponse, frame.FlagCommandResponseContinuation, []byte("x"), true)
	require.NoError(t, err)
	requireHuman(t, decodeFrames(t, out),
		"1 2 stream-begin stream-settings eos cbor:b'identity'",
		"1 2 encoded command-response continuation x")
}

// errAfterReader yields n bytes, then err.
type errAfterReader struct {
	n   int
	err error
}

func (r *errAfterReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestCommandRequestFailureLeavesNoTrace(t *testing.T) {
	boom := errors.New("disk on fire")
	cases := []struct {
		name    string
		req     CommandRequest
		wantErr string
		is      error
	}{
		{"reader fails at once", CommandRequest{Name: "push", Data: &errAfterReader{err: boom}},
			"framing: reading command data: disk on fire", boom},
		{"reader fails after two frames", CommandRequest{Name: "push", Data: &errAfterReader{n: 70000, err: boom}},
			"framing: reading command data: disk on fire", boom},
		{"unencodable argument", CommandRequest{Name: "x", Args: map[hgcbor.Bytes]any{"c": make(chan int)}},
			"framing: encoding command arguments: ", nil},
		{"unencodable redirect", CommandRequest{Name: "x", Redirect: func() {}},
			"framing: encoding command redirect: ", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewOutputStream(1, OutputStreamConfig{})
			out, err := s.AppendCommandRequest([]byte("before"), 1, tc.req)
			require.ErrorContains(t, err, tc.wantErr)
			require.True(t, strings.HasPrefix(err.Error(), tc.wantErr))
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Equal(t, "before", string(out))
			require.False(t, s.Active(), "the next frame still begins the stream")
			out, err = s.AppendCommandRequest(nil, 1, CommandRequest{Name: "ok"})
			require.NoError(t, err)
			require.Equal(t, frame.StreamFlagBegin, decodeFrames(t, out)[0].StreamFlags)
		})
	}
}

// Whatever the sizes, a command request decodes back to what was sent, in
// frames within the limit and flagged as Mercurial's server expects.
func TestCommandRequestRoundTrip(t *testing.T) {
	for _, max := range []int{1, 9, 100, 32767, 32768, 65535} {
		for _, argSize := range []int{0, 10, 40000} {
			for _, dataSize := range []int{-1, 0, 1, 32768, 70000} {
				s := NewOutputStream(1, OutputStreamConfig{MaxFramePayload: max})
				req := CommandRequest{Name: "cmd"}
				if argSize > 0 {
					req.Args = map[hgcbor.Bytes]any{"blob": pattern(argSize), "n": int64(argSize)}
				}
				var data []byte
				if dataSize >= 0 {
					data = pattern(dataSize)
					req.Data = bytes.NewReader(data)
				}
				out, err := s.AppendCommandRequest(nil, 9, req)
				require.NoError(t, err)

				var payload, gotData []byte
				var dataFrames int
				frames := decodeFrames(t, out)
				for i, f := range frames {
					require.LessOrEqual(t, len(f.Payload), max)
					require.Equal(t, uint16(9), f.RequestID)
					require.Equal(t, i == 0, f.StreamFlags == frame.StreamFlagBegin)
					switch f.Type {
					case frame.TypeCommandRequest:
						require.Zero(t, dataFrames, "request frames come first")
						want := frame.FlagCommandRequestContinuation
						if i == 0 {
							want = frame.FlagCommandRequestNew
						}
						if req.Data != nil {
							want |= frame.FlagCommandRequestExpectData
						}
						if i+1 < len(frames) && frames[i+1].Type == frame.TypeCommandRequest {
							want |= frame.FlagCommandRequestMoreFrames
						}
						require.Equal(t, want, f.Flags, "frame %d", i)
						payload = append(payload, f.Payload...)
					case frame.TypeCommandData:
						dataFrames++
						last := i == len(frames)-1
						require.Equal(t, last, f.Flags == frame.FlagCommandDataEOS, "frame %d", i)
						gotData = append(gotData, f.Payload...)
					default:
						t.Fatalf("unexpected %v", f)
					}
				}
				v, err := hgcbor.Unmarshal(payload)
				require.NoError(t, err)
				m := v.(map[any]any)
				require.Equal(t, hgcbor.Bytes("cmd"), asBytes(m[hgcbor.Bytes("name")]))
				_, hasArgs := m[hgcbor.Bytes("args")]
				require.Equal(t, argSize > 0, hasArgs)
				require.Equal(t, dataSize >= 0, dataFrames > 0)
				require.True(t, bytes.Equal(data, gotData))
			}
		}
	}
}

// asBytes normalizes a decoded byte string.
func asBytes(v any) hgcbor.Bytes {
	switch x := v.(type) {
	case []byte:
		return hgcbor.Bytes(x)
	case hgcbor.Bytes:
		return x
	}
	return ""
}

func TestStreamEncoderHooks(t *testing.T) {
	s := NewOutputStream(2, OutputStreamConfig{})
	require.Equal(t, "abc", string(s.Encode(nil, []byte("abc"))), "no encoder: data unchanged")
	require.Empty(t, s.Flush(nil))
	require.Empty(t, s.Finish(nil))
	require.Nil(t, s.Encoder())

	h := &holdEncoder{}
	s.SetEncoder(h)
	require.Same(t, h, s.Encoder())
	require.Empty(t, s.Encode(nil, []byte("abc")))
	require.Equal(t, "[abc]", string(s.Flush(nil)))
	require.Equal(t, "!", string(s.Finish(nil)))
}

// Invalid UTF-8 in text-output arguments is replaced, valid text is kept.
func TestTextOutputArgsValidUTF8(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{0x00, 'a', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff}
	s := NewOutputStream(2, OutputStreamConfig{})
	for range 2000 {
		b := make([]byte, rng.IntN(10))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		out, err := s.AppendTextOutput(nil, 1, []TextAtom{{Format: "%s", Args: []string{string(b)}}})
		require.NoError(t, err)
		v, err := hgcbor.Unmarshal(decodeFrames(t, out)[0].Payload)
		require.NoError(t, err)
		arg := []byte(asBytes(v.([]any)[0].(map[any]any)[hgcbor.Bytes("args")].([]any)[0]))
		require.True(t, utf8.Valid(arg), "%x became %x", b, arg)
		if utf8.Valid(b) {
			require.Equal(t, b, arg)
		} else {
			// Each replacement stands for at least one byte.
			require.LessOrEqual(t, strings.Count(string(arg), "\uFFFD"), len(b))
		}
	}
}

func TestMaximalSubpart(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"\x80", 1}, {"\xc0\x80", 1}, {"\xc2", 1}, {"\xc2a", 1}, {"\xe2\x82", 2}, {"\xe2\x82a", 2},
		{"\xe0\x80", 1}, {"\xe0\xa0", 2}, {"\xed\xa0", 1}, {"\xed\x9f", 2}, {"\xf0\x8f", 1},
		{"\xf0\x90\x80", 3}, {"\xf4\x90", 1}, {"\xf4\x8f\xbf", 3}, {"\xf5\x80", 1}, {"\xff", 1},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, maximalSubpart(tc.in), "%x", tc.in)
	}
}

func TestResponseEmitterReset(t *testing.T) {
	s := NewOutputStream(2, OutputStreamConfig{})
	s.SetEncoder(IdentityEncoder{})
	out, err := s.AppendStreamSettings(nil, 1)
	require.NoError(t, err)
	e := NewResponseEmitter(s, 1)
	out, err = e.Send(out, []byte("dropped"))
	require.NoError(t, err)
	require.Equal(t, 7, e.Buffered())
	e.Reset(s, 3)
	require.Zero(t, e.Buffered())
	out, err = e.Send(out, []byte("kept"))
	require.NoError(t, err)
	out, err = e.Flush(out)
	require.NoError(t, err)
	requireHuman(t, decodeFrames(t, out),
		"1 2 stream-begin stream-settings eos cbor:b'identity'",
		"3 2 encoded command-response continuation kept")
}

// With a payload size above Mercurial's safe bound configured, the emitter
// still never sends 65536 bytes or more in a frame.
func TestResponseEmitterClampsFrameSize(t *testing.T) {
	s := NewOutputStream(2, OutputStreamConfig{MaxFramePayload: 1 << 20})
	s.SetEncoder(IdentityEncoder{})
	out, err := s.AppendStreamSettings(nil, 1)
	require.NoError(t, err)
	e := NewResponseEmitter(s, 1)
	for _, n := range []int{200000, 65535, 65536, 1} {
		out, err = e.Send(out, pattern(n))
		require.NoError(t, err)
	}
	out, err = e.Flush(out)
	require.NoError(t, err)
	total := 0
	for _, f := range decodeFrames(t, out)[1:] {
		require.Less(t, len(f.Payload), frame.MercurialSafePayload)
		total += len(f.Payload)
	}
	require.Equal(t, 200000+65535+65536+1, total)
}

// Building a response allocates nothing once the buffers have grown.
func TestTypicalResponseAllocs(t *testing.T) {
	s, e, chunks := typicalResponseSetup()
	var out []byte
	run := func() {
		var err error
		if out, err = appendTypicalResponse(out[:0], s, e, chunks); err != nil {
			t.Fatal(err)
		}
	}
	run()
	require.Zero(t, testing.AllocsPerRun(100, run))
	require.Len(t, decodeFrames(t, out), 3) // ok, the coalesced values, eos
}

func typicalResponseSetup() (*OutputStream, *ResponseEmitter, [][]byte) {
	s := NewOutputStream(2, OutputStreamConfig{})
	s.SetEncoder(IdentityEncoder{})
	s.settingsSent = true
	var chunks [][]byte
	for _, v := range []any{
		map[hgcbor.Bytes]any{"heads": []any{pattern(20), pattern(20)}},
		[]any{[]byte("value"), int64(42), nil, true},
		pattern(500),
	} {
		b, err := hgcbor.Marshal(v)
		if err != nil {
			panic(err)
		}
		chunks = append(chunks, b)
	}
	return s, NewResponseEmitter(s, 1), chunks
}

// appendTypicalResponse builds a response of a few CBOR values: the status
// header, the values coalesced into one frame, end of stream.
func appendTypicalResponse(dst []byte, s *OutputStream, e *ResponseEmitter, chunks [][]byte) ([]byte, error) {
	dst, err := s.AppendResponseOK(dst, 1)
	for _, c := range chunks {
		if err == nil {
			dst, err = e.Send(dst, c)
		}
	}
	if err == nil {
		dst, err = e.Flush(dst)
	}
	if err == nil {
		dst, err = s.AppendResponseEOS(dst, 1)
	}
	return dst, err
}

// What each builder sends, in Mercurial's human syntax (the vectors check the
// same against Mercurial itself, byte for byte).
func TestBuildersHuman(t *testing.T) {
	cases := []struct {
		name  string
		build func(s *OutputStream) ([]byte, error)
		want  []string
	}{
		{"command", func(s *OutputStream) ([]byte, error) {
			return s.AppendCommandRequest(nil, 1, CommandRequest{Name: "heads"})
		}, []string{"1 1 stream-begin command-request new cbor:{b'name': b'heads'}"}},
		{"command with args and data", func(s *OutputStream) ([]byte, error) {
			return s.AppendCommandRequest(nil, 1, CommandRequest{Name: "push",
				Args: map[hgcbor.Bytes]any{"force": true}, Data: strings.NewReader("bundle")})
		}, []string{
			"1 1 stream-begin command-request new|have-data cbor:{b'name': b'push', b'args': {b'force': True}}",
			"1 1 0 command-data eos bundle",
		}},
		{"command with empty data", func(s *OutputStream) ([]byte, error) {
			return s.AppendCommandRequest(nil, 1, CommandRequest{Name: "x", Data: strings.NewReader("")})
		}, []string{
			"1 1 stream-begin command-request new|have-data cbor:{b'name': b'x'}",
			"1 1 0 command-data eos ",
		}},
		{"command split", func(s *OutputStream) ([]byte, error) {
			return NewOutputStream(1, OutputStreamConfig{MaxFramePayload: 8}).AppendCommandRequest(nil, 1, CommandRequest{Name: "heads"})
		}, []string{
			"1 1 stream-begin command-request new|more \\xa1\\x44name\\x45h",
			"1 1 0 command-request continuation eads",
		}},
		{"ok then eos", func(s *OutputStream) ([]byte, error) {
			out, err := s.AppendResponseOK(nil, 1)
			if err != nil {
				return nil, err
			}
			return s.AppendResponseEOS(out, 1)
		}, []string{
			"1 2 stream-begin command-response continuation cbor:{b'status': b'ok'}",
			"1 2 0 command-response eos ",
		}},
		{"command error", func(s *OutputStream) ([]byte, error) {
			return s.AppendCommandError(nil, 1, "unknown command: %s", []any{[]byte("foo")})
		}, []string{"1 2 stream-begin command-response eos cbor:{b'status': b'error', b'error': {b'message': b'unknown command: %s', b'args': [b'foo']}}"}},
		{"error response", func(s *OutputStream) ([]byte, error) {
			return s.AppendErrorResponse(nil, 5, "bad frame", ErrorTypeProtocol)
		}, []string{"5 2 stream-begin error-response 0 cbor:{b'type': b'protocol', b'message': [{b'msg': b'bad frame'}]}"}},
		{"text output", func(s *OutputStream) ([]byte, error) {
			return s.AppendTextOutput(nil, 1, []TextAtom{{Format: "hi %s", Args: []string{"\xff"}, Labels: []string{"l"}}, {Format: "."}})
		}, []string{"1 2 stream-begin text-output 0 cbor:[{b'msg': b'hi %s', b'args': [b'\\xef\\xbf\\xbd'], b'labels': [b'l']}, {b'msg': b'.'}]"}},
		{"sender protocol settings", func(s *OutputStream) ([]byte, error) {
			return s.AppendSenderProtocolSettings(nil, 1, []string{"zstd-8mb", "identity"})
		}, []string{"1 2 stream-begin sender-protocol-settings eos cbor:{b'contentencodings': [b'zstd-8mb', b'identity']}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := frame.MustParseHuman(tc.want[0]).StreamID
			out, err := tc.build(NewOutputStream(id, OutputStreamConfig{}))
			require.NoError(t, err)
			requireHuman(t, decodeFrames(t, out), tc.want...)
		})
	}
}

// Data sent a frame at a time after a DataLater request is what Data sends
// in one go.
func TestCommandDataLater(t *testing.T) {
	for _, size := range []int{0, 1, 32768, 70000} {
		data := pattern(size)
		whole, err := NewOutputStream(1, OutputStreamConfig{}).AppendCommandRequest(nil, 1,
			CommandRequest{Name: "push", Data: bytes.NewReader(data)})
		require.NoError(t, err)

		s := NewOutputStream(1, OutputStreamConfig{})
		out, err := s.AppendCommandRequest(nil, 1, CommandRequest{Name: "push", DataLater: true})
		require.NoError(t, err)
		r := bytes.NewReader(data)
		frames := 0
		for done := false; !done; frames++ {
			before := len(out)
			out, done, err = s.AppendCommandData(out, 1, r)
			require.NoError(t, err)
			require.LessOrEqual(t, len(out)-before, frame.HeaderSize+frame.DefaultMaxPayload, "one frame per call")
		}
		require.Equal(t, size/frame.DefaultMaxPayload+1, frames)
		require.Equal(t, whole, out, "size %d", size)
	}
}

// An unencoded emitter sends data as it is, without stream settings and
// without the encoded flag, even when the stream has an encoder; Reset
// makes it encode again.
func TestResponseEmitterUnencoded(t *testing.T) {
	s := NewOutputStream(2, OutputStreamConfig{MaxFramePayload: 4})
	e := NewResponseEmitter(s, 1)
	_, err := e.Send(nil, []byte("x"))
	require.NoError(t, err)
	_, err = e.Flush(nil)
	require.ErrorIs(t, err, ErrNoStreamSettings, "Mercurial's behaviour by default")

	e.Reset(s, 1)
	e.Unencoded()
	out, err := e.Send(nil, []byte("ab"))
	require.NoError(t, err)
	out, err = e.Send(out, []byte("cdefghi"))
	require.NoError(t, err)
	out, err = e.Flush(out)
	require.NoError(t, err)
	requireHuman(t, decodeFrames(t, out),
		"1 2 stream-begin command-response continuation ab",
		"1 2 0 command-response continuation cdef",
		"1 2 0 command-response continuation ghi")

	s.SetEncoder(IdentityEncoder{})
	e.Unencoded()
	out, err = e.Send(nil, []byte("j"))
	require.NoError(t, err)
	out, err = e.Flush(out)
	require.NoError(t, err)
	requireHuman(t, decodeFrames(t, out), "1 2 0 command-response continuation j")

	e.Reset(s, 1)
	_, err = e.Send(nil, []byte("k"))
	require.NoError(t, err)
	_, err = e.Flush(nil)
	require.ErrorIs(t, err, ErrNoStreamSettings, "Reset undoes Unencoded")
}
