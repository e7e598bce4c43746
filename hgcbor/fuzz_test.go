package hgcbor_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
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
		for _, opts := range []hgcbor.DecodeOptions{{}, {RejectText: true, MaxItems: 5}, {MaxDecodedBytes: 500, MaxDepth: 2}} {
			n1, s1, e1 := opts.Check(data)
			n2, s2, e2 := hgcbor.CheckSlow(opts, data)
			require.Equal(t, []any{n2, s2, e2}, []any{n1, s1, e1}, "Check's fast path and the decoder disagree (%+v)", opts)
		}
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
		case errors.Is(err, action.ErrLimit):
			// DecodeAll's budget covers the whole input, the Decoder's each
			// item: a long run of small items fits the one and not the
			// other.
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

// FuzzRawMessage checks the decoder's fast path, the RawMessage readers,
// against the decoder: on an item Check accepts, ItemLen finds its end, Kind
// its kind, Bytes its contents, Entries and Lookup the map Unmarshal builds;
// on anything else they never panic.
func FuzzRawMessage(f *testing.F) {
	for _, c := range encodeCases {
		if b, err := hgcbor.Marshal(c.v); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	for _, s := range []string{"bf4161bf4162f6ffff", "a241610141610205", "5f41614162ff", "a3446e616d654568656164734461726773a0ff"} {
		b, _ := hexDecode(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := hgcbor.RawMessage(data)
		opts := hgcbor.DecodeOptions{MaxDecodedBytes: 1 << 40}
		n, _, err := opts.Check(data)
		if err != nil {
			// Whatever the input, the readers do not panic.
			m.Kind()
			m.Bytes()
			for range m.Entries() {
			}
			m.Lookup("name")
			hgcbor.ItemLen(data)
			return
		}
		require.Equal(t, n, hgcbor.ItemLen(data))
		// CheckFields: Check and Lookup in one pass.
		// (Four keys take the fast path, five the general one.)
		for _, keys := range [][]string{{"name", "args", "redirect", ""}, {"name", "args", "redirect", "", "a"}} {
			values := make([]hgcbor.RawMessage, len(keys))
			fn, fsize, ferr := opts.CheckFields(data, keys, values)
			_, size, _ := opts.Check(data)
			require.NoError(t, ferr)
			require.Equal(t, []any{n, size}, []any{fn, fsize})
			for i, k := range keys {
				v, ok := m[:n].Lookup(k)
				if !ok {
					v = nil
				}
				require.Equal(t, v, values[i], "key %q", k)
			}
		}
		m = m[:n]
		v, err := opts.Unmarshal(m)
		require.NoError(t, err)
		want := map[string]hgcbor.Kind{"[]interface {}": hgcbor.KindArray, "map[interface {}]interface {}": hgcbor.KindMap,
			"[]uint8": hgcbor.KindBytes, "string": hgcbor.KindText, "hgcbor.Set": hgcbor.KindSet, "bool": hgcbor.KindBool,
			"<nil>": hgcbor.KindNull, "int64": hgcbor.KindInt, "uint64": hgcbor.KindInt, "hgcbor.NegInt": hgcbor.KindInt}
		require.Equal(t, want[fmt.Sprintf("%T", v)], m.Kind(), "%T", v)
		if b, ok := m.Bytes(); ok || m.Kind() == hgcbor.KindBytes {
			require.True(t, ok)
			require.Equal(t, v, b)
		}
		got := map[any]any{}
		for k, x := range m.Entries() {
			kv, err := opts.Unmarshal(k)
			require.NoError(t, err)
			if b, ok := kv.([]byte); ok {
				kv = hgcbor.Bytes(b)
			}
			xv, err := opts.Unmarshal(x)
			require.NoError(t, err)
			got[kv] = xv
			if kb, ok := kv.(hgcbor.Bytes); ok {
				last, ok := m.Lookup(string(kb))
				require.True(t, ok)
				lv, err := opts.Unmarshal(last)
				require.NoError(t, err)
				require.Equal(t, v.(map[any]any)[kb], lv)
			}
		}
		if m.Kind() == hgcbor.KindMap {
			require.Equal(t, v, got)
		} else {
			require.Empty(t, got)
		}
	})
}
