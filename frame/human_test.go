package frame

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/hgcbor"
)

func TestParseHuman(t *testing.T) {
	cases := []struct {
		in   string
		want Frame
	}{
		{"1 1 stream-begin command-request new cbor:{b'name': b'foo'}", Frame{RequestID: 1, StreamID: 1,
			StreamFlags: StreamFlagBegin, Type: TypeCommandRequest, Flags: FlagCommandRequestNew,
			Payload: []byte("\xa1\x44name\x43foo")}},
		{"65535 255 stream-begin|stream-end|encoded command-data continuation|eos payload with spaces ",
			Frame{RequestID: 65535, StreamID: 255, StreamFlags: StreamFlagBegin | StreamFlagEnd | StreamFlagEncoded,
				Type: TypeCommandData, Flags: FlagCommandDataContinuation | FlagCommandDataEOS,
				Payload: []byte("payload with spaces ")}},
		{"2 3 0 3 2 ", Frame{RequestID: 2, StreamID: 3, Type: TypeCommandResponse, Flags: FlagCommandResponseEOS}},
		{"0 0 1|2 text-output 0 \\x00\\n\\\\\\101", Frame{StreamFlags: StreamFlagBegin | StreamFlagEnd,
			Type: TypeTextOutput, Payload: []byte("\x00\n\\A")}},
		{"1_0\t +2 8 progress 0 x", Frame{RequestID: 10, StreamID: 2, StreamFlags: 8, Type: TypeProgress, Payload: []byte("x")}},
		{"1 1 0 command-request new|more|have-data|continuation cbor:[b'a', 'b', -1, {1, 2}]",
			Frame{RequestID: 1, StreamID: 1, Type: TypeCommandRequest, Flags: 0x0f,
				Payload: []byte("\x84\x41a\x61b\x20\xd9\x01\x02\x82\x01\x02")}},
		{"1 1 0 command-request new cbor", Frame{RequestID: 1, StreamID: 1, Type: TypeCommandRequest,
			Flags: FlagCommandRequestNew, Payload: []byte("cbor")}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseHuman(c.in)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestParseHumanErrors(t *testing.T) {
	cases := []struct {
		in, field, msg string
	}{
		{"1 1 0 command-request new", "frame",
			`frame: invalid frame "1 1 0 command-request new" in human frame: want 6 space-separated fields, found 5`},
		{"x 1 0 command-request new ", "request id", `frame: invalid request id "x" in human frame: not an integer`},
		{"65536 1 0 command-request new ", "request id", `frame: invalid request id "65536" in human frame: out of range [0, 65535]`},
		{"1 -1 0 command-request new ", "stream id", `frame: invalid stream id "-1" in human frame: out of range [0, 255]`},
		{"1 1 begin command-request new ", "stream flags", `frame: invalid stream flags "begin" in human frame: not an integer`},
		{"1 1 0 command-reply new ", "type", `frame: invalid type "command-reply" in human frame: not an integer`},
		{"1 1 0 4 0 ", "type", `frame: invalid type "4" in human frame: not a frame type`},
		{"1 1 0 command-data new ", "flags",
			`frame: invalid flags "new" in human frame: not an integer or a flag of command-data frames`},
		{"1 1 0 command-data 16 ", "flags", `frame: invalid flags "16" in human frame: out of range [0, 15]`},
		{"1 1 0 command-data 0 \\x4", "payload", `frame: invalid payload "\\x4" in human frame: invalid \x escape at position 0`},
		{"1 1 0 command-data 0 \\", "payload", `frame: invalid payload "\\" in human frame: trailing \ in string`},
		{"1 1 0 command-data 0 cbor:{b'a': 1.5}", "payload",
			`frame: invalid payload "cbor:{b'a': 1.5}" in human frame: hgcbor: python literal: at offset 7: number "1.5" is not an integer; CBOR floats are not supported`},
		{"1 1 0 command-data 0 cbor:18446744073709551616", "payload",
			`frame: invalid payload "cbor:18446744073709551616" in human frame: hgcbor: cannot encode *big.Int: integer out of range: 18446744073709551616`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := ParseHuman(c.in)
			var he *HumanError
			require.ErrorAs(t, err, &he)
			require.Equal(t, c.field, he.Field)
			require.EqualError(t, err, c.msg)
		})
	}
	_, err := ParseHuman("1 1 0 command-data 0 cbor:18446744073709551616")
	require.ErrorIs(t, err, hgcbor.ErrIntegerRange)
}

func TestMustParseHumanPanics(t *testing.T) {
	require.Panics(t, func() { MustParseHuman("nope") })
	require.Equal(t, TypeProgress, MustParseHuman("1 1 0 progress 0 ").Type)
}

func TestFormatHuman(t *testing.T) {
	cases := []struct {
		f    Frame
		want string
	}{
		{MustParseHuman("1 1 stream-begin command-request new cbor:{b'name': b'foo'}"),
			`1 1 stream-begin command-request new \xa1DnameCfoo`},
		{Frame{RequestID: 7, StreamID: 2, Type: TypeCommandResponse, Flags: FlagCommandResponseEOS | FlagCommandResponseContinuation},
			"7 2 0 command-response continuation|eos "},
		{Frame{StreamFlags: StreamFlagEnd | 0x08, Type: TypeTextOutput, Flags: 0x05, Payload: []byte("a b\\c\x7f")},
			`0 0 stream-end|8 text-output 5 a b\x5cc\x7f`},
		{Frame{Type: TypeCommandData, Flags: FlagCommandDataEOS | 0x04, Payload: []byte("cbor:{}")},
			`0 0 0 command-data eos|4 \x63bor:{}`},
	}
	for _, c := range cases {
		got := FormatHuman(c.f)
		require.Equal(t, c.want, got)
		back, err := ParseHuman(got)
		require.NoError(t, err)
		if len(c.f.Payload) == 0 {
			c.f.Payload = nil
		}
		require.Equal(t, c.f, back)
	}
}
