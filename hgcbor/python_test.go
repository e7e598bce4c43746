package hgcbor_test

import (
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
