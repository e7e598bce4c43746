package frame

import (
	"math"
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
			StreamFlags: StreamBegin, Type: TypeCommandRequest, Flags: FlagCommandRequestNew,
			Payload: []byte("\xa1\x44name\x43foo")}},
		{"65535 255 stream-begin|stream-end|encoded command-data continuation|eos payload with spaces ",
			Frame{RequestID: 65535, StreamID: 255, StreamFlags: StreamBegin | StreamEnd | StreamEncoded,
				Type: TypeCommandData, Flags: FlagCommandDataContinuation | FlagCommandDataEOS,
				Payload: []byte("payload with spaces ")}},
		{"2 3 0 3 2 ", Frame{RequestID: 2, StreamID: 3, Type: TypeCommandResponse, Flags: FlagCommandResponseEOS}},
		{"0 0 1|2 text-output 0 \\x00\\n\\\\\\101", Frame{StreamFlags: StreamBegin | StreamEnd,
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
			`frame: invalid payload "cbor:{b'a': 1.5}" in human frame: python literal: at offset 7: number "1.5" is not an integer; CBOR floats are not supported`},
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

func TestPythonLiteral(t *testing.T) {
	cases := []struct {
		src  string
		want any
	}{
		{"None", nil},
		{"  True", true},
		{"\n\nFalse\n# trailing comment\n", false},
		{"0", int64(0)},
		{"-0", int64(0)},
		{"+ 7", int64(7)},
		{"-(3)", int64(-3)},
		{"0x_fF", int64(255)},
		{"0o17", int64(15)},
		{"0B101", int64(5)},
		{"1_000_000", int64(1000000)},
		{"000", int64(0)},
		{"9223372036854775808", uint64(1 << 63)},
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"-9223372036854775809", hgcbor.NegInt(1 << 63)},
		{"-18446744073709551616", hgcbor.NegInt(math.MaxUint64)},
		{"b''", hgcbor.Bytes("")},
		{`b'\x00\n\t\\\'\"\a\b\f\v\r'`, hgcbor.Bytes("\x00\n\t\\'\"\a\b\f\v\r")},
		{`b"\101\7\777"`, hgcbor.Bytes("A\x07\xff")},
		{`b'\q\u0041\N{X}'`, hgcbor.Bytes(`\q\u0041\N{X}`)},
		{`rb'\n\''`, hgcbor.Bytes(`\n\'`)},
		{`Br"x"`, hgcbor.Bytes("x")},
		{"b'a' b\"b\" B'c'", hgcbor.Bytes("abc")},
		{"b'''x\ny'''", hgcbor.Bytes("x\ny")},
		{"b'a\\\nb'", hgcbor.Bytes("ab")},
		{"'text'", "text"},
		{`u'\u00e9\U0001F600\777'`, "é\U0001F600ǿ"},
		{"'\xe9'", "é"}, // source bytes are Latin-1
		{"'a' 'b'", "ab"},
		{"[]", []any{}},
		{"()", []any{}},
		{"(1)", int64(1)},
		{"(1,)", []any{int64(1)}},
		{"1, 2,", []any{int64(1), int64(2)}},
		{"[1, [2, (3,)],\n 4,]", []any{int64(1), []any{int64(2), []any{int64(3)}}, int64(4)}},
		{"{}", map[any]any{}},
		{"{b'a': 1, 'a': 2, 3: None,}", map[any]any{hgcbor.Bytes("a"): int64(1), "a": int64(2), int64(3): nil}},
		{"{True: 1, 1: 2}", map[any]any{true: int64(2)}},
		{"{1: 1, True: 2}", map[any]any{int64(1): int64(2)}},
		{"{0: 'x', False: 'y'}", map[any]any{int64(0): "y"}},
		{"{b'a': 1, b'a': 2}", map[any]any{hgcbor.Bytes("a"): int64(2)}},
		{"set()", hgcbor.Set{}},
		{"set ( )", hgcbor.Set{}},
		{"{1, True, b'x', 'x', None}", hgcbor.Set{int64(1), hgcbor.Bytes("x"), "x", nil}},
		{"{b'k': {b'n': [set(), {}]}}", map[any]any{hgcbor.Bytes("k"): map[any]any{hgcbor.Bytes("n"): []any{hgcbor.Set{}, map[any]any{}}}}},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			got, err := parsePythonLiteral(c.src)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestPythonLiteralRejects(t *testing.T) {
	cases := []struct{ src, msg string }{
		{"", "at offset 0: unexpected end of input"},
		{"1.5", `at offset 0: number "1.5" is not an integer; CBOR floats are not supported`},
		{"1e3", `at offset 0: number "1e3" is not an integer; CBOR floats are not supported`},
		{"2j", `at offset 0: number "2j" is not an integer; CBOR floats are not supported`},
		{"01", `at offset 0: leading zeros in decimal integer literal "01"`},
		{"1__0", `at offset 0: invalid integer literal "1__0"`},
		{"0b2", `at offset 0: invalid integer literal "0b2"`},
		{"--1", `at offset 1: unexpected "-1"`},
		{"-(-1)", "at offset 0: unary - applies only to a number"},
		{"-True", "at offset 0: unary - applies only to a number"},
		{"1 + 2", `at offset 2: unexpected "+ 2"`},
		{"1,\n2", `at offset 3: unexpected "2"`},
		{"[1 2]", `at offset 3: expected ']', found "2]"`},
		{"{1: 2, 3}", `at offset 8: expected ':' in dict, found "}"`},
		{"{[1]: 2}", "at offset 5: lists and tuples cannot be dict keys or set elements here"},
		{"{(1, 2)}", "at offset 7: lists and tuples cannot be dict keys or set elements here"},
		{"{**x}", "at offset 1: unpacking is not a literal"},
		{"foo", `at offset 0: name "foo" is not a literal`},
		{"set(1)", "at offset 4: only set() is a literal call"},
		{"...", "at offset 0: Ellipsis cannot be encoded to CBOR"},
		{"f'x'", "at offset 0: f-strings are not literals"},
		{"b'a' 'b'", "at offset 5: cannot mix bytes and nonbytes literals"},
		{"b'\xe9'", "at offset 2: bytes can only contain ASCII literal characters"},
		{"'abc", "at offset 0: unterminated string literal"},
		{"'a\nb'", "at offset 0: unterminated string literal"},
		{`b'\x4'`, `at offset 2: truncated \x escape`},
		{`'\ud800'`, `at offset 1: surrogate U+D800 cannot be encoded as UTF-8`},
		{`'\U00110000'`, `at offset 1: illegal Unicode character in \U escape`},
		{`'\N{BULLET}'`, `at offset 1: \N{…} escapes are not supported`},
		{"1\x00", "source contains a NUL byte"},
		{"[" + repeat("[", 100), "at offset 100: brackets nested deeper than 100"},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			_, err := parsePythonLiteral(c.src)
			require.EqualError(t, err, c.msg)
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
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
		{Frame{StreamFlags: StreamEnd | 0x08, Type: TypeTextOutput, Flags: 0x05, Payload: []byte("a b\\c\x7f")},
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
