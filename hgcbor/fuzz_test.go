package hgcbor_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/hgcbor"
)

// FuzzHgcborDecode checks, for any input: decoding never panics; whatever
// decodes re-encodes, and the encoding decodes to the same value and encodes
// to the same bytes again; the push Decoder fed in small pieces agrees with
// DecodeAll; the decoded form is bounded by the input (the default budget:
// DefaultDecodedSize of its length, measured structurally); Check agrees
// with UnmarshalFirst on the first item and measures at least its
// footprint.
func FuzzHgcborDecode(f *testing.F) {
	for _, c := range encodeCases {
		if b, err := hgcbor.Marshal(c.v); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	in, _ := hexDecode(streamInput)
	f.Add(in)
	for _, s := range []string{"9f9f9fffffff", "bf4161bf4162f6ffff", "7f6161ff", "d901029f01ff", "c1c1c100", "f93c00"} {
		b, _ := hexDecode(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		first, _, ferr := hgcbor.UnmarshalFirst(data)
		n, size, cerr := hgcbor.DecodeOptions{}.Check(data)
		require.Equal(t, ferr, cerr, "Check and UnmarshalFirst disagree")
		if ferr == nil {
			_, rest, _ := hgcbor.UnmarshalFirst(data)
			require.Equal(t, len(data)-len(rest), n)
			require.LessOrEqual(t, footprint(first), size)
		}

		items, err := hgcbor.DecodeAll(data)
		if err == nil {
			var total int64
			for _, v := range items {
				total += footprint(v)
			}
			require.LessOrEqual(t, total, hgcbor.DefaultDecodedSize(len(data)), "decoded form of %d input bytes", len(data))
			for _, v := range items {
				enc, err := hgcbor.Marshal(v)
				require.NoError(t, err, "decoded value %#v must encode", v)
				v2, err := hgcbor.Unmarshal(enc)
				require.NoError(t, err)
				require.Equal(t, v, v2)
				enc2, err := hgcbor.Marshal(v2)
				require.NoError(t, err)
				require.Equal(t, enc, enc2)
			}
		} else {
			var de *hgcbor.DecodeError
			require.ErrorAs(t, err, &de)
			require.LessOrEqual(t, de.Offset, len(data))
		}

		d := hgcbor.Decoder{MaxBuffered: 1 << 40}
		var got []any
		var derr error
		for off := 0; off < len(data) && derr == nil; off += 3 {
			d.Feed(data[off:min(off+3, len(data))])
			for {
				v, ok, err := d.Next()
				if err != nil {
					derr = err
					break
				}
				if !ok {
					break
				}
				got = append(got, v)
			}
		}
		// A small limit bounds what the Decoder holds, whatever the input.
		small := hgcbor.Decoder{MaxBuffered: 16, MaxDepth: 4}
		for off := 0; off < len(data); off += 5 {
			small.Feed(data[off:min(off+5, len(data))])
			require.LessOrEqual(t, small.Buffered(), 16)
			for {
				_, ok, err := small.Next()
				if err != nil || !ok {
					break
				}
			}
		}

		switch {
		case err == nil:
			require.NoError(t, derr)
			require.False(t, d.InProgress())
			require.Equal(t, len(items), len(got))
			if len(items) > 0 {
				require.Equal(t, items, got)
			}
		case derr != nil:
			// Both reject the input (perhaps for different reasons: the
			// Decoder checks structure before content).
		case errors.Is(err, hgcbor.ErrTruncated):
			require.True(t, d.InProgress(), "DecodeAll says truncated, Decoder must be waiting")
		default:
			// DecodeAll found bad content in an item whose end has not
			// arrived yet, so the Decoder is still waiting.
			require.True(t, d.InProgress())
		}
	})
}

// FuzzPythonLiteral checks the parser and the printer of Python literals
// against each other: whatever ParsePythonLiteral accepts, PythonLiteral
// prints as a literal that parses back to the same value, and the parser
// never panics.
func FuzzPythonLiteral(f *testing.F) {
	for _, s := range []string{"None", "{b'a': [1, -2, (3,)], 'x': {True, b''}}", "set()", `b'\x00\n' b"y"`,
		"18446744073709551615", "-18446744073709551616", "[[[{}]]]", "{1: 2, True: 3}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		v, err := hgcbor.ParsePythonLiteral(src)
		if err != nil {
			return
		}
		if _, err := hgcbor.Marshal(v); err != nil {
			return // a *big.Int out of CBOR's range, say
		}
		printed := hgcbor.PythonLiteral(v)
		back, err := hgcbor.ParsePythonLiteral(printed)
		require.NoError(t, err, "PythonLiteral printed %q", printed)
		require.Equal(t, printed, hgcbor.PythonLiteral(back))
	})
}
