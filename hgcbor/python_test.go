package hgcbor_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

func TestPythonLiteral(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{nil, "None"},
		{true, "True"},
		{int64(-7), "-7"},
		{hgcbor.NegInt(1 << 63), "-9223372036854775809"},
		{[]byte("it's \\ \x00\xff"), `b'it\'s \\ \x00\xff'`},
		{hgcbor.Bytes("name"), "b'name'"},
		{"text", "'text'"},
		{"é\U0001F600\u0100\x01", `'\xe9\U0001f600\u0100\x01'`}, // code points, not UTF-8 bytes
		{[]any{int64(1), []byte("x"), nil}, "[1, b'x', None]"},
		{hgcbor.Set{int64(2), int64(1)}, "{1, 2}"},
		{hgcbor.Set{}, "set()"},
		{map[any]any{hgcbor.Bytes("b"): nil, hgcbor.Bytes("a"): []any{true, false}}, "{b'a': [True, False], b'b': None}"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, hgcbor.PythonLiteral(tc.v))
	}
}

// What PythonLiteral writes, the human syntax's cbor: payload reads back to
// the same value.
func TestPythonLiteralRoundTripsThroughHumanSyntax(t *testing.T) {
	values := []any{
		map[any]any{
			hgcbor.Bytes("name"): []byte("it's \\ \x00\xff"),
			hgcbor.Bytes("args"): map[any]any{hgcbor.Bytes("n"): int64(-3), hgcbor.Bytes("t"): "text"},
			int64(5):             []any{true, nil, hgcbor.Set{int64(2), int64(1)}},
		},
		hgcbor.Set{},
		hgcbor.NegInt(1 << 63),
	}
	for _, v := range values {
		want, err := hgcbor.Marshal(v)
		require.NoError(t, err)
		f, err := frame.ParseHuman("1 1 0 command-data 0 cbor:" + hgcbor.PythonLiteral(v))
		require.NoError(t, err, hgcbor.PythonLiteral(v))
		require.Equal(t, want, f.Payload, hgcbor.PythonLiteral(v))
	}
}

func TestParsePythonLiteral(t *testing.T) {
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
			got, err := hgcbor.ParsePythonLiteral(c.src)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestParsePythonLiteralRejects(t *testing.T) {
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
			_, err := hgcbor.ParsePythonLiteral(c.src)
			require.EqualError(t, err, "hgcbor: python literal: "+c.msg)
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
