package hgcbor_test

import (
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/internal/testpeers"
)

type B = hgcbor.Bytes

func bigInt(s string) *big.Int {
	x, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return x
}

// encodeCases pairs Go values with the Python literal Mercurial encodes to
// the same bytes. Python cborutil cannot encode str, so text appears only in
// textCases.
var encodeCases = []struct {
	name string
	v    any
	py   string
}{
	{"none", nil, "None"},
	{"false", false, "False"},
	{"true", true, "True"},
	{"zero", 0, "0"},
	{"23", uint8(23), "23"},
	{"24", int16(24), "24"},
	{"255", 255, "255"},
	{"256", uint16(256), "256"},
	{"65535", 65535, "65535"},
	{"65536", int32(65536), "65536"},
	{"2^32-1", uint32(math.MaxUint32), "4294967295"},
	{"2^32", int64(1 << 32), "4294967296"},
	{"max int64", int64(math.MaxInt64), "9223372036854775807"},
	{"max uint64", uint64(math.MaxUint64), "18446744073709551615"},
	{"big max", bigInt("18446744073709551615"), "18446744073709551615"},
	{"-1", -1, "-1"},
	{"-24", int8(-24), "-24"},
	{"-25", -25, "-25"},
	{"-256", -256, "-256"},
	{"-257", -257, "-257"},
	{"-65537", -65537, "-65537"},
	{"min int64", int64(math.MinInt64), "-9223372036854775808"},
	{"-2^64", bigInt("-18446744073709551616"), "-18446744073709551616"},
	{"NegInt -2^64", hgcbor.NegInt(math.MaxUint64), "-18446744073709551616"},
	{"NegInt below int64", hgcbor.NegInt(1 << 63), "-9223372036854775809"},
	{"NegInt -1", hgcbor.NegInt(0), "-1"},
	{"NegInt key", map[any]any{hgcbor.NegInt(1 << 63): 1, -1: 2, 0: 3, B("a"): 4}, "{-9223372036854775809: 1, -1: 2, 0: 3, b'a': 4}"},
	{"empty bytes", []byte{}, "b''"},
	{"bytes", []byte("foo"), "b'foo'"},
	{"Bytes", B("foo"), "b'foo'"},
	{"bytes 23", B(strings.Repeat("a", 23)), "b'" + strings.Repeat("a", 23) + "'"},
	{"bytes 24", B(strings.Repeat("a", 24)), "b'" + strings.Repeat("a", 24) + "'"},
	{"bytes 256", B(strings.Repeat("a", 256)), "b'a' * 256"},
	{"bytes 65536", B(strings.Repeat("a", 65536)), "b'a' * 65536"},
	{"binary", []byte{0, 0xff, '\n'}, `b'\x00\xff\n'`},
	{"empty list", []any{}, "[]"},
	{"list", []any{1, B("a"), nil, true}, "[1, b'a', None, True]"},
	{"typed slice", []B{"a", "b"}, "[b'a', b'b']"},
	{"typed int slice", []int{3, 2, 1}, "(3, 2, 1)"},
	{"list of 24", make([]any, 24), "[None] * 24"},
	{"empty map", map[any]any{}, "{}"},
	{"command request", map[B]any{"name": B("foo"), "args": map[B]any{"key": B("value")}},
		"{b'name': b'foo', b'args': {b'key': b'value'}}"},
	{"status ok", map[any]any{B("status"): B("ok")}, "{b'status': b'ok'}"},
	// b'aa' sorts before b'b' (by content), though its encoding 0x42… sorts
	// after 0x41… (by encoded bytes, RFC 7049 canonical and RFC 8949).
	{"content order not encoded order", map[B]any{"b": 1, "aa": 2}, "{b'b': 1, b'aa': 2}"},
	{"content order any keys", map[any]any{B("b"): 1, B("aa"): 2, B(""): 3}, "{b'b': 1, b'aa': 2, b'': 3}"},
	{"ints numeric order", map[any]any{10: 1, -1: 2, 2: 3, 300: 4, -300: 5}, "{10: 1, -1: 2, 2: 3, 300: 4, -300: 5}"},
	{"mixed key types by type name", map[any]any{B("x"): 1, 5: 2, nil: 3, false: 4, -1: 5},
		"{b'x': 1, 5: 2, None: 3, False: 4, -1: 5}"},
	{"bools", map[any]any{true: 1, false: 2}, "{True: 1, False: 2}"},
	{"nested", map[B]any{"a": []any{map[B]any{"b": []any{}}, hgcbor.Set{B("z"), B("y")}}},
		"{b'a': [{b'b': []}, {b'z', b'y'}]}"},
	{"typed map", map[int]string{}, "{}"},
	{"typed byte map", map[B][]B{"k": {"v"}}, "{b'k': [b'v']}"},
	{"big map", bigMap(40), bigMapPy(40)},
	{"empty set", hgcbor.Set{}, "set()"},
	{"set", hgcbor.Set{B("b"), B("aa"), 3, -2, nil, true}, "{b'b', b'aa', 3, -2, None, True}"},
	{"set of bytes slices", hgcbor.Set{[]byte("q"), []byte("p")}, "{b'q', b'p'}"},
	{"big set", bigSet(30), "set(range(30))"},
	{"tuple", [2]any{B("a"), 1}, "(b'a', 1)"},
	{"raw", hgcbor.RawMessage{0x82, 0x01, 0x02}, "[1, 2]"},
	{"pointer", ptr(B("p")), "b'p'"},
	{"nil pointer", (*int)(nil), "None"},
	{"nil big", (*big.Int)(nil), "None"},
}

func ptr[T any](v T) *T { return &v }

func bigMap(n int) map[any]any {
	m := map[any]any{}
	for i := range n {
		m[B(strings.Repeat("k", i%7)+string(rune('a'+i%26)))] = i
	}
	return m
}

func bigMapPy(n int) string {
	// Mirrors bigMap.
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		b.WriteString("b'" + strings.Repeat("k", i%7) + string(rune('a'+i%26)) + "': " + itoa(i) + ", ")
	}
	b.WriteString("}")
	return b.String()
}

func bigSet(n int) hgcbor.Set {
	s := hgcbor.Set{}
	for i := n - 1; i >= 0; i-- {
		s = append(s, i)
	}
	return s
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func TestEncodeMatchesMercurial(t *testing.T) {
	testpeers.MercurialPython(t)
	lits := make([]string, len(encodeCases))
	for i, c := range encodeCases {
		lits[i] = c.py
	}
	want := runPython(t, encodeScript, lits)
	for i, c := range encodeCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := hgcbor.Marshal(c.v)
			require.NoError(t, err)
			require.Equal(t, want[i], hex.EncodeToString(got))
		})
	}
}

func TestEncodeOrderIsPythonsNotRFCs(t *testing.T) {
	got, err := hgcbor.Marshal(map[B]any{"b": 1, "aa": 2})
	require.NoError(t, err)
	// Mercurial: b'aa' first.
	require.Equal(t, "a242616102416201", hex.EncodeToString(got))

	// RFC 8949 deterministic (bytewise lexical on encoded keys) puts b'b'
	// first, which is what fxamacker/cbor's canonical modes write.
	em, err := cbor.CoreDetEncOptions().EncMode()
	require.NoError(t, err)
	rfc, err := em.Marshal(map[cbor.ByteString]any{"b": 1, "aa": 2})
	require.NoError(t, err)
	require.Equal(t, "a241620142616102", hex.EncodeToString(rfc))
	require.NotEqual(t, got, rfc)
}

func TestEncodeText(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{"", "60"},
		{"a", "6161"},
		{"é", "62c3a9"},
		{map[string]any{"b": B("x"), "aa": 1}, "a26261610161624178"},
		// Type names: "bytes" < "int" < "str".
		{map[any]any{"t": 1, B("t"): 2, 0: 3}, "a34174020003617401"},
		{hgcbor.Set{"s", B("s")}, "d901028241736173"},
	}
	for _, c := range cases {
		got, err := hgcbor.Marshal(c.v)
		require.NoError(t, err)
		require.Equal(t, c.want, hex.EncodeToString(got), "%#v", c.v)
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		v    any
		err  error
		msg  string
	}{
		{"float", 1.5, hgcbor.ErrUnsupported, "hgcbor: cannot encode float64: unsupported item: 1.5"},
		{"float in map", map[B]any{"x": float32(1)}, hgcbor.ErrUnsupported, "hgcbor: cannot encode float32: unsupported item: 1"},
		{"too big", bigInt("18446744073709551616"), hgcbor.ErrIntegerRange,
			"hgcbor: cannot encode *big.Int: integer out of range: 18446744073709551616"},
		{"too small", bigInt("-18446744073709551617"), hgcbor.ErrIntegerRange,
			"hgcbor: cannot encode *big.Int: integer out of range: -18446744073709551617"},
		{"duplicate ints", map[any]any{1: 1, int64(1): 2}, hgcbor.ErrDuplicateKey,
			"hgcbor: cannot encode map[interface {}]interface {}: duplicate map key or set element: 1"},
		{"duplicate set", hgcbor.Set{B("a"), []byte("a")}, hgcbor.ErrDuplicateKey,
			`hgcbor: cannot encode hgcbor.Set: duplicate map key or set element: b"a"`},
		{"list key", map[any]any{[2]int{}: 1}, hgcbor.ErrInvalidKey,
			"hgcbor: cannot encode [2]int: invalid map key or set element: collections cannot be map keys or set elements"},
		{"set in set", hgcbor.Set{hgcbor.Set{}}, hgcbor.ErrInvalidKey,
			"hgcbor: cannot encode hgcbor.Set: invalid map key or set element: collections cannot be map keys or set elements"},
		{"bad utf8", "\xff", hgcbor.ErrInvalidUTF8, "hgcbor: cannot encode string: text string is not valid UTF-8"},
		{"bad utf8 key", map[string]any{"\xff": 1}, hgcbor.ErrInvalidUTF8,
			"hgcbor: cannot encode map[string]interface {}: text string is not valid UTF-8: map key"},
		{"channel", make(chan int), hgcbor.ErrUnsupported, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte{7}
			out, err := hgcbor.Append(dst, c.v)
			require.ErrorIs(t, err, c.err)
			var ee *hgcbor.EncodeError
			require.ErrorAs(t, err, &ee)
			if c.msg != "" {
				require.EqualError(t, err, c.msg)
			}
			require.Equal(t, []byte{7}, out, "Append returns dst unchanged on error")
		})
	}
}

func TestEncodeCyclic(t *testing.T) {
	l := []any{nil}
	l[0] = l
	_, err := hgcbor.Marshal(l)
	require.ErrorIs(t, err, action.ErrLimit)
	var le *action.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, "nesting depth", le.What)
}

func TestAppendHelpersMatchMercurialStreaming(t *testing.T) {
	// cborutil.streamencodebytestringfromiter([b'ab', b'c']),
	// streamencodearrayfromiter([1]), streamencodemapfromiter([(b'a', 1)]).
	var b []byte
	b = hgcbor.AppendBeginIndefiniteBytes(b)
	b = hgcbor.AppendBytes(b, []byte("ab"))
	b = hgcbor.AppendBytes(b, []byte("c"))
	b = hgcbor.AppendBreak(b)
	b = hgcbor.AppendBeginIndefiniteArray(b)
	b = hgcbor.AppendHead(b, hgcbor.MajorUnsigned, 1)
	b = hgcbor.AppendBreak(b)
	b = hgcbor.AppendBeginIndefiniteMap(b)
	b = hgcbor.AppendBytes(b, []byte("a"))
	b = hgcbor.AppendHead(b, hgcbor.MajorUnsigned, 1)
	b = hgcbor.AppendBreak(b)
	require.Equal(t, "5f42616241 63ff 9f01ff bf416101ff", spaced(b, 5, 7, 10))

	vs, err := hgcbor.DecodeAll(b)
	require.NoError(t, err)
	require.Equal(t, []any{[]byte("abc"), []any{int64(1)}, map[any]any{B("a"): int64(1)}}, vs)
}

func spaced(b []byte, cuts ...int) string {
	var parts []string
	prev := 0
	for _, c := range cuts {
		parts = append(parts, hex.EncodeToString(b[prev:c]))
		prev = c
	}
	parts = append(parts, hex.EncodeToString(b[prev:]))
	return strings.Join(parts, " ")
}

// TestFxamackerAgrees decodes every encoding with fxamacker/cbor, an
// independent RFC 8949 decoder: it must be well-formed and decode to the
// same values.
func TestFxamackerAgrees(t *testing.T) {
	dm, err := cbor.DecOptions{DefaultMapType: nil}.DecMode()
	require.NoError(t, err)
	for _, c := range encodeCases {
		t.Run(c.name, func(t *testing.T) {
			enc, err := hgcbor.Marshal(c.v)
			require.NoError(t, err)
			require.NoError(t, dm.Wellformed(enc))
			if c.name == "NegInt key" {
				t.Skip("fxamacker/cbor cannot decode a big.Int map key into map[any]any")
			}
			var theirs any
			require.NoError(t, dm.Unmarshal(enc, &theirs))
			ours, err := hgcbor.Unmarshal(enc)
			require.NoError(t, err)
			require.Equal(t, normalizeFx(theirs), normalizeOurs(ours), "%x", enc)
		})
	}
}

// normalizeFx and normalizeOurs bring both decoders' values to one shape:
// integers as decimal strings, byte strings as "b:"-prefixed strings, sets
// as their element lists.
func normalizeFx(v any) any {
	switch x := v.(type) {
	case uint64:
		return new(big.Int).SetUint64(x).String()
	case int64:
		return big.NewInt(x).String()
	case big.Int:
		return x.String()
	case []byte:
		return "b:" + string(x)
	case cbor.ByteString:
		return "b:" + string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeFx(e)
		}
		return out
	case cbor.Tag:
		return normalizeFx(x.Content)
	case map[any]any:
		out := map[any]any{}
		for k, e := range x {
			out[normalizeFx(k)] = normalizeFx(e)
		}
		return out
	}
	return v
}

func normalizeOurs(v any) any {
	switch x := v.(type) {
	case uint64:
		return new(big.Int).SetUint64(x).String()
	case int64:
		return big.NewInt(x).String()
	case hgcbor.NegInt:
		return x.String()
	case []byte:
		return "b:" + string(x)
	case B:
		return "b:" + string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeOurs(e)
		}
		return out
	case hgcbor.Set:
		return normalizeOurs([]any(x))
	case map[any]any:
		out := map[any]any{}
		for k, e := range x {
			out[normalizeOurs(k)] = normalizeOurs(e)
		}
		return out
	}
	return v
}

func TestDecodeValues(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want any
	}{
		{"uint", "1903e8", int64(1000)},
		{"uint64 above int64", "1bffffffffffffffff", uint64(math.MaxUint64)},
		{"negint", "3903e7", int64(-1000)},
		{"min int64", "3b7fffffffffffffff", int64(math.MinInt64)},
		{"below int64", "3bffffffffffffffff", hgcbor.NegInt(math.MaxUint64)},
		{"bytes", "43666f6f", []byte("foo")},
		{"text", "63666f6f", "foo"},
		{"indefinite bytes", "5f4261624163ff", []byte("abc")},
		{"empty indefinite bytes", "5fff", []byte{}},
		{"indefinite text", "7f62616261" + "63ff", "abc"},
		{"indefinite array", "9f0102ff", []any{int64(1), int64(2)}},
		{"nested indefinite", "9f9fff9f01ffff", []any{[]any{}, []any{int64(1)}}},
		{"indefinite map", "bf4161f54162f6ff", map[any]any{B("a"): true, B("b"): nil}},
		{"map with byte keys", "a2416101416202", map[any]any{B("a"): int64(1), B("b"): int64(2)}},
		{"map with text keys", "a1616101", map[any]any{"a": int64(1)}},
		{"byte string values are []byte", "a1416141ff", map[any]any{B("a"): []byte{0xff}}},
		{"duplicate key last wins", "a2416101416102", map[any]any{B("a"): int64(2)}},
		{"set sorted and deduplicated", "d90102864162416101f641614162", hgcbor.Set{nil, B("a"), B("b"), int64(1)}},
		{"indefinite set", "d901029f0201ff", hgcbor.Set{int64(1), int64(2)}},
		{"big negative keys collapse", "a23bffffffffffffffff013bffffffffffffffff02",
			map[any]any{hgcbor.NegInt(math.MaxUint64): int64(2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := hgcbor.Unmarshal(unhex(t, c.hex))
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	in := unhex(t, "a1416143666f6f")
	v, err := hgcbor.Unmarshal(in)
	require.NoError(t, err)
	for i := range in {
		in[i] = 0
	}
	require.Equal(t, map[any]any{B("a"): []byte("foo")}, v)
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		err  error
		msg  string
	}{
		{"empty", "", hgcbor.ErrTruncated, "hgcbor: unexpected end of input at offset 0"},
		{"short uint", "19ff", hgcbor.ErrTruncated, "hgcbor: unexpected end of input at offset 0"},
		{"short bytes", "8143ab", hgcbor.ErrTruncated, "hgcbor: unexpected end of input: string of 3 bytes at offset 1"},
		{"huge bytes", "5bffffffffffffffff", hgcbor.ErrTruncated, "hgcbor: unexpected end of input: string of 18446744073709551615 bytes at offset 0"},
		{"short array", "8201", hgcbor.ErrTruncated, "hgcbor: unexpected end of input at offset 2"},
		{"open indefinite", "9f01", hgcbor.ErrTruncated, "hgcbor: unexpected end of input at offset 2"},
		{"trailing", "0102", hgcbor.ErrTrailingData, "hgcbor: trailing data after item: 1 bytes at offset 1"},
		{"reserved ai", "1c", hgcbor.ErrMalformed, "hgcbor: malformed item: reserved additional information 28 in initial byte 0x1c at offset 0"},
		{"indefinite uint", "1f", hgcbor.ErrMalformed, "hgcbor: malformed item: indefinite-length integer at offset 0"},
		{"indefinite negint", "813f", hgcbor.ErrMalformed, "hgcbor: malformed item: indefinite-length integer at offset 1"},
		{"lone break", "ff", hgcbor.ErrMalformed, "hgcbor: malformed item: unexpected break at offset 0"},
		{"break in definite array", "81ff", hgcbor.ErrMalformed, "hgcbor: malformed item: unexpected break at offset 1"},
		{"text chunk in bytes", "5f6161ff", hgcbor.ErrMalformed,
			"hgcbor: malformed item: chunk with initial byte 0x61 in indefinite-length string at offset 1"},
		{"nested indefinite chunk", "5f5fffff", hgcbor.ErrMalformed,
			"hgcbor: malformed item: chunk with initial byte 0x5f in indefinite-length string at offset 1"},
		{"float", "f93c00", hgcbor.ErrUnsupported, "hgcbor: unsupported item: floating-point number at offset 0"},
		{"double", "fb3ff0000000000000", hgcbor.ErrUnsupported, "hgcbor: unsupported item: floating-point number at offset 0"},
		{"undefined", "f7", hgcbor.ErrUnsupported, "hgcbor: unsupported item: undefined at offset 0"},
		{"simple", "f820", hgcbor.ErrUnsupported, "hgcbor: unsupported item: simple value 32 at offset 0"},
		{"tag", "c11a00000000", hgcbor.ErrUnsupported, "hgcbor: unsupported item: semantic tag 1 at offset 0"},
		{"set of map", "d9010281a0", hgcbor.ErrInvalidKey, "hgcbor: invalid map key or set element: map at offset 4"},
		{"set of non-array", "d90102a0", hgcbor.ErrMalformed,
			"hgcbor: malformed item: finite set tag followed by initial byte 0xa0, want an array at offset 3"},
		{"array key", "a18001", hgcbor.ErrInvalidKey, "hgcbor: invalid map key or set element: array at offset 1"},
		{"set key", "a1d901028001", hgcbor.ErrInvalidKey, "hgcbor: invalid map key or set element: set at offset 1"},
		{"bad utf8", "61ff", hgcbor.ErrInvalidUTF8, "hgcbor: text string is not valid UTF-8 at offset 0"},
		{"too deep", strings.Repeat("81", hgcbor.DefaultMaxDepth+1) + "00", action.ErrLimit,
			"hgcbor: nesting depth: 257 exceeds the limit of 256 at offset 256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := hgcbor.Unmarshal(unhex(t, c.hex))
			require.ErrorIs(t, err, c.err)
			var de *hgcbor.DecodeError
			require.ErrorAs(t, err, &de)
			require.EqualError(t, err, c.msg)
		})
	}
}

func TestUnmarshalFirstAndDecodeAll(t *testing.T) {
	in := unhex(t, "01a1416102"+"43616263"+"f6")
	v, rest, err := hgcbor.UnmarshalFirst(in)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	require.Equal(t, in[1:], rest)

	all, err := hgcbor.DecodeAll(in)
	require.NoError(t, err)
	require.Equal(t, []any{int64(1), map[any]any{B("a"): int64(2)}, []byte("abc"), nil}, all)

	none, err := hgcbor.DecodeAll(nil)
	require.NoError(t, err)
	require.Empty(t, none)

	_, err = hgcbor.DecodeAll(in[:len(in)-2])
	require.ErrorIs(t, err, hgcbor.ErrTruncated)
}

func TestDecodeMercurialEncodings(t *testing.T) {
	testpeers.MercurialPython(t)
	lits := make([]string, len(encodeCases))
	for i, c := range encodeCases {
		lits[i] = c.py
	}
	encs := runPython(t, encodeScript, lits)
	for i, c := range encodeCases {
		t.Run(c.name, func(t *testing.T) {
			v, err := hgcbor.Unmarshal(unhex(t, encs[i]))
			require.NoError(t, err)
			again, err := hgcbor.Marshal(v)
			require.NoError(t, err)
			require.Equal(t, encs[i], hex.EncodeToString(again), "decode then encode reproduces Mercurial's bytes")
		})
	}
}

func TestMercurialDecodesOurEncodings(t *testing.T) {
	testpeers.MercurialPython(t)
	lits := make([]string, len(encodeCases))
	ours := make([]string, len(encodeCases))
	for i, c := range encodeCases {
		lits[i] = "[" + c.py + "]"
		enc, err := hgcbor.Marshal(c.v)
		require.NoError(t, err)
		ours[i] = hex.EncodeToString(enc)
	}
	// repr(decodeall(ours)) must equal repr([literal]) evaluated by Python:
	// compare against Mercurial decoding its own encoding of the literal.
	theirs := runPython(t, encodeScript, lits)
	for i := range theirs {
		theirs[i] = theirs[i][2:] // drop the one-element array head (0x81)
	}
	want, got := runPython(t, decodeScript, theirs), runPython(t, decodeScript, ours)
	for i, c := range encodeCases {
		require.Equal(t, want[i], got[i], c.name)
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{hgcbor.ErrTruncated, hgcbor.ErrTrailingData, hgcbor.ErrMalformed, hgcbor.ErrUnsupported,
		hgcbor.ErrInvalidKey, hgcbor.ErrDuplicateKey, hgcbor.ErrIntegerRange, hgcbor.ErrInvalidUTF8,
		hgcbor.ErrTextString, action.ErrLimit}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

// Decoded strings share memory (see copyString), but no value can reach
// another's bytes or the input's: writing into a value or appending to it
// changes nothing else.
func TestDecodedValuesAreIndependent(t *testing.T) {
	in, err := hgcbor.Marshal([]any{[]byte("ab"), []byte(""), []byte("cd"),
		map[hgcbor.Bytes]any{"k": []byte("v"), "": "text"}, []byte(strings.Repeat("x", 100))})
	require.NoError(t, err)
	orig := append([]byte(nil), in...)
	v, err := hgcbor.Unmarshal(in)
	require.NoError(t, err)
	want, err := hgcbor.Unmarshal(orig)
	require.NoError(t, err)
	items := v.([]any)
	for _, i := range []int{0, 1, 2, 4} {
		b := items[i].([]byte)
		require.Equal(t, len(b), cap(b), "item %d: capacity cut to length", i)
		for k := range b {
			b[k] = '!'
		}
		items[i] = append(b, "appended"...)
		items[i] = b
	}
	for k := range in {
		in[k] = 0
	}
	require.Equal(t, []byte("!!"), items[0])
	require.Equal(t, []byte{}, items[1])
	require.Equal(t, []byte("!!"), items[2])
	require.Equal(t, want.([]any)[3], items[3], "keys and values of the map unchanged")
	require.Equal(t, []byte(strings.Repeat("!", 100)), items[4])
}
