package hgcbor_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// streamInput is a sequence of items as Mercurial's streaming encoders
// write them: definite and indefinite collections, a set, a large string.
var streamInput = strings.Join([]string{
	"a2446e616d6543666f6f4461726773a0",   // {b'name': b'foo', b'args': {}}
	"5f4261624163ff",                     // indefinite b'abc'
	"9f01a1416182f6f5ff",                 // indefinite [1, {b'a': [None, True]}]
	"bf4161d9010282010241629f9f80ffffff", // indefinite map with set and nested indefinite arrays
	"00",                                 // 0
	"590100" + strings.Repeat("61", 256), // 256-byte string
	"3bffffffffffffffff",                 // -2^64
}, "")

func TestDecoderAnySplit(t *testing.T) {
	in := unhex(t, streamInput)
	want, err := hgcbor.DecodeAll(in)
	require.NoError(t, err)
	require.Len(t, want, 7)

	for _, chunk := range []int{1, 2, 3, 7, 64, len(in)} {
		var d hgcbor.Decoder
		var got []any
		for off := 0; off < len(in); off += chunk {
			d.Feed(in[off:min(off+chunk, len(in))])
			for {
				v, ok, err := d.Next()
				require.NoError(t, err)
				if !ok {
					break
				}
				got = append(got, v)
			}
		}
		require.Equal(t, want, got, "chunk size %d", chunk)
		require.Zero(t, d.Buffered())
		require.False(t, d.InProgress())
	}
}

func TestDecoderWaitsForMore(t *testing.T) {
	var d hgcbor.Decoder
	d.Feed(unhex(t, "8201"))
	v, ok, err := d.Next()
	require.NoError(t, err)
	require.False(t, ok)
	require.Nil(t, v)
	require.True(t, d.InProgress())
	require.Equal(t, 2, d.Buffered())

	d.Feed(unhex(t, "02f6"))
	v, ok, err = d.Next()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []any{int64(1), int64(2)}, v)
	v, ok, err = d.Next()
	require.NoError(t, err)
	require.True(t, ok)
	require.Nil(t, v)
	_, ok, err = d.Next()
	require.NoError(t, err)
	require.False(t, ok)
}

func TestDecoderCopiesInput(t *testing.T) {
	var d hgcbor.Decoder
	p := unhex(t, "43666f")
	d.Feed(p)
	p[1] = 'X'
	d.Feed([]byte("o"))
	v, ok, err := d.Next()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("foo"), v)
}

func TestDecoderErrorsAreTerminal(t *testing.T) {
	cases := []struct {
		name string
		d    hgcbor.Decoder
		feed []string
		err  error
		msg  string
	}{
		{"malformed after good item", hgcbor.Decoder{}, []string{"01", "1c"}, hgcbor.ErrMalformed,
			"hgcbor: malformed item: reserved additional information 28 in initial byte 0x1c at offset 1"},
		{"unsupported", hgcbor.Decoder{}, []string{"4100", "f93c00"}, hgcbor.ErrUnsupported,
			"hgcbor: unsupported item: floating-point number at offset 2"},
		{"buffer limit", hgcbor.Decoder{MaxBuffered: 4}, []string{"82", "4401020304"}, action.ErrLimit,
			"hgcbor: buffered bytes: 6 exceeds the limit of 4 at offset 1"},
		{"declared string over limit", hgcbor.Decoder{MaxBuffered: 100}, []string{"5a00010000"}, action.ErrLimit,
			"hgcbor: string bytes: 65536 exceeds the limit of 100 at offset 0"},
		{"declared array over limit", hgcbor.Decoder{MaxBuffered: 100}, []string{"9a00010000"}, action.ErrLimit,
			"hgcbor: collection items (a buffered byte each at least): 65536 exceeds the limit of 100 at offset 0"},
		{"depth", hgcbor.Decoder{MaxDepth: 2}, []string{"818181"}, action.ErrLimit,
			"hgcbor: nesting depth: 3 exceeds the limit of 2 at offset 2"},
		{"tag chain", hgcbor.Decoder{MaxDepth: 2}, []string{"c1c1c1c1c1c1c1"}, action.ErrLimit,
			"hgcbor: tags and indefinite strings in a chain: 6 exceeds the limit of 5 at offset 5"},
		{"break outside indefinite", hgcbor.Decoder{}, []string{"82ff"}, hgcbor.ErrMalformed,
			"hgcbor: malformed item: unexpected break at offset 1"},
		{"bad chunk", hgcbor.Decoder{}, []string{"7f41"}, hgcbor.ErrMalformed,
			"hgcbor: malformed item: chunk with initial byte 0x41 in indefinite-length string at offset 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.d
			var err error
			for _, f := range c.feed {
				d.Feed(unhex(t, f))
				for {
					var ok bool
					_, ok, err = d.Next()
					if !ok {
						break
					}
				}
			}
			require.ErrorIs(t, err, c.err)
			require.EqualError(t, err, c.msg)
			d.Feed([]byte{0})
			_, ok, again := d.Next()
			require.False(t, ok)
			require.Equal(t, err, again, "a failed Decoder keeps failing")

			d.Reset()
			d.Feed([]byte{0x05})
			v, ok, err := d.Next()
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, int64(5), v)
		})
	}
}

func TestDecoderBytewiseIsLinear(t *testing.T) {
	// A 1 MiB string fed one byte at a time must not rescan from the start
	// on every byte; the scanner's hint skips straight to the end. This is a
	// functional test of the path; the cost is in BenchmarkDecoderBytewise.
	n := 1 << 20
	in := append(hgcbor.AppendHead(nil, 2, uint64(n)), make([]byte, n)...)
	var d hgcbor.Decoder
	for i := range in {
		d.Feed(in[i : i+1])
		v, ok, err := d.Next()
		require.NoError(t, err)
		if i < len(in)-1 {
			require.False(t, ok)
			continue
		}
		require.True(t, ok)
		require.Len(t, v, n)
	}
}
