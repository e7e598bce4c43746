package hgcbor_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// oneByteInts is an array of n one-byte integers: the densest input for an
// []any, sixteen bytes of interface per input byte.
func oneByteInts(n int) []byte {
	b := hgcbor.AppendHead(nil, hgcbor.MajorArray, uint64(n))
	return append(b, bytes.Repeat([]byte{0x01}, n)...)
}

// allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc,
// which counts every allocation whether or not it is still live: an upper
// bound of the heap growth f causes).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeBudgetStopsAmplification: a 16 MiB array of one-byte integers
// decoded to 256 MiB of interfaces (+750 MiB of heap through the Decoder,
// growing it by append). Under the default budget (4 bytes per input byte)
// it fails with an *action.LimitError before the array is allocated, whether
// decoded whole or through the push Decoder.
func TestDecodeBudgetStopsAmplification(t *testing.T) {
	in := oneByteInts(16 << 20)
	var err error
	n := allocated(func() { _, err = hgcbor.Unmarshal(in) })
	var le *action.LimitError
	require.ErrorAs(t, err, &le)
	require.ErrorIs(t, err, action.ErrLimit)
	require.Equal(t, "decoded bytes", le.What)
	require.Equal(t, int64(4*len(in)), le.Limit)
	require.Less(t, n, uint64(1<<20), "allocated %d bytes before failing", n)
	t.Logf("Unmarshal of a %d-byte array of one-byte ints: %v; allocated %d bytes", len(in), err, n)

	d := hgcbor.Decoder{MaxBuffered: 32 << 20}
	n = allocated(func() {
		d.Feed(in)
		_, _, err = d.Next()
	})
	require.ErrorAs(t, err, &le)
	// The Decoder's own copy of the input is all it holds.
	require.Less(t, n, uint64(len(in))+uint64(len(in))/4+1<<20, "allocated %d bytes", n)
	t.Logf("Decoder on the same input: %v; allocated %d bytes (its buffer)", err, n)

	// A budget large enough lets it through.
	v, err := hgcbor.DecodeOptions{MaxDecodedBytes: 1 << 30}.Unmarshal(oneByteInts(1 << 10))
	require.NoError(t, err)
	require.Len(t, v, 1<<10)
}

func TestDecodeLimits(t *testing.T) {
	in := mustHex(t, "8301820203a1414104") // [1, [2, 3], {b'A': 4}]
	_, size, err := hgcbor.DecodeOptions{}.Check(in)
	require.NoError(t, err)

	// Exactly the size passes, one byte less fails.
	_, err = hgcbor.DecodeOptions{MaxDecodedBytes: size}.Unmarshal(in)
	require.NoError(t, err)
	_, err = hgcbor.DecodeOptions{MaxDecodedBytes: size - 1}.Unmarshal(in)
	var le *action.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, size-1, le.Limit)
	var de *hgcbor.DecodeError
	require.ErrorAs(t, err, &de)

	// Items: the array, 1, the inner array, 2, 3, the map, b'A', 4.
	_, err = hgcbor.DecodeOptions{MaxItems: 8}.Unmarshal(in)
	require.NoError(t, err)
	_, err = hgcbor.DecodeOptions{MaxItems: 7}.Unmarshal(in)
	require.ErrorAs(t, err, &le)
	require.Equal(t, "items", le.What)
	require.Equal(t, int64(8), le.Size)
	require.EqualError(t, err, "hgcbor: items: 8 exceeds the limit of 7 at offset 8")

	// The push Decoder applies the same limits per item.
	d := hgcbor.Decoder{MaxItems: 7}
	d.Feed(in)
	_, _, err = d.Next()
	require.ErrorAs(t, err, &le)

	// Text strings, when rejected.
	_, err = hgcbor.DecodeOptions{RejectText: true}.Unmarshal(mustHex(t, "82416161 61"))
	require.ErrorIs(t, err, hgcbor.ErrTextString)
	_, _, err = hgcbor.DecodeOptions{RejectText: true}.Check(mustHex(t, "7f6161ff"))
	require.ErrorIs(t, err, hgcbor.ErrTextString)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hexDecode(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// budgetShapes are inputs of every shape the decoder builds, small and
// large, definite and indefinite.
func budgetShapes(t *testing.T) map[string][]byte {
	shapes := map[string][]byte{}
	enc := func(name string, v any) {
		b, err := hgcbor.Marshal(v)
		require.NoError(t, err)
		shapes[name] = b
	}
	for _, n := range []int{0, 1, 7, 8, 9, 16, 100, 1000, 5000} {
		m := map[any]any{}
		for i := range n {
			m[int64(i)*1000] = []byte("v")
		}
		enc("map"+itoa(n), m)
		a := make([]any, n)
		for i := range a {
			a[i] = int64(i) * 1000
		}
		enc("ints"+itoa(n), a)
		s := hgcbor.Set{}
		for i := range n {
			s = append(s, hgcbor.Bytes(itoa(i)))
		}
		enc("set"+itoa(n), s)
	}
	for _, n := range []int{0, 1, 64, 65, 1000, 40000, 70000} {
		enc("bytes"+itoa(n), bytes.Repeat([]byte{'x'}, n))
		enc("text"+itoa(n), strings.Repeat("x", n))
	}
	nodes := make([]any, 2000)
	for i := range nodes {
		nodes[i] = bytes.Repeat([]byte{byte(i)}, 20)
	}
	enc("nodes", nodes)
	enc("nested", []any{[]any{[]any{map[any]any{hgcbor.Bytes("k"): []any{nil, true, -5}}}}})

	// Indefinite items, as Mercurial's streaming encoders write them.
	ind := func(name string, open byte, body []byte) {
		shapes[name] = append(append([]byte{open}, body...), 0xff)
	}
	var body []byte
	for i := range 3000 {
		body = hgcbor.AppendHead(body, hgcbor.MajorUnsigned, uint64(i*1000))
	}
	ind("indefarray", 0x9f, body)
	body = body[:0]
	for i := range 3000 {
		body = hgcbor.AppendHead(body, hgcbor.MajorUnsigned, uint64(i))
		body = append(body, 0xf6)
	}
	ind("indefmap", 0xbf, body)
	body = body[:0]
	for range 300 {
		body = append(body, 0x45, 'a', 'b', 'c', 'd', 'e')
	}
	ind("indefbytes", 0x5f, body)
	body = body[:0]
	for range 300 {
		body = append(body, 0x65, 'a', 'b', 'c', 'd', 'e')
	}
	ind("indeftext", 0x7f, body)
	body = body[:0]
	for i := range 500 {
		body = hgcbor.AppendHead(body, hgcbor.MajorUnsigned, uint64(i))
	}
	shapes["indefset"] = append(append([]byte{0xd9, 0x01, 0x02, 0x9f}, body...), 0xff)
	return shapes
}

// TestDecodedSizeIsAnUpperBound: what Check reports as an item's decoded
// size is at least what Unmarshal allocates for it, for every shape; so a
// budget on the decoded size bounds the memory decoding takes.
func TestDecodedSizeIsAnUpperBound(t *testing.T) {
	if raceEnabled {
		t.Skip("skipping: the race detector's allocator is not the one the decoded-size model describes")
	}
	for name, in := range budgetShapes(t) {
		n, size, err := hgcbor.DecodeOptions{MaxDecodedBytes: 1 << 40}.Check(in)
		require.NoError(t, err, name)
		require.Equal(t, len(in), n, name)
		opts := hgcbor.DecodeOptions{MaxDecodedBytes: size}
		var v any
		// The least of a few runs: the runtime allocates now and then on
		// its own (a test's timer, the GC's workers).
		got := uint64(1 << 62)
		for range 3 {
			got = min(got, allocated(func() { v, err = opts.Unmarshal(in) }))
		}
		require.NoError(t, err, name)
		require.NotNil(t, in, v)
		require.LessOrEqual(t, got, uint64(size), "%s: %d input bytes allocated %d bytes, decoded size %d", name, len(in), got, size)
		require.LessOrEqual(t, footprint(v), size, name)
	}
}

// footprint estimates the memory a decoded value holds, from its structure
// alone: the fuzzer's measure of the decoder's output.
func footprint(v any) int64 {
	switch v := v.(type) {
	case []byte:
		return 24 + int64(cap(v))
	case hgcbor.Bytes:
		return 16 + int64(len(v))
	case string:
		return 16 + int64(len(v))
	case int64, uint64, hgcbor.NegInt:
		return 8
	case []any:
		n := 24 + 16*int64(cap(v))
		for _, x := range v {
			n += footprint(x)
		}
		return n
	case hgcbor.Set:
		n := 24 + 16*int64(cap(v))
		for _, x := range v {
			n += footprint(x)
		}
		return n
	case map[any]any:
		n := 48 + 32*int64(len(v))
		for k, x := range v {
			n += footprint(k) + footprint(x)
		}
		return n
	}
	return 0
}

// TestDecodedSizeOfNodeLists: a list of 20-byte node ids, the bulk of
// Mercurial's payloads, stays within the default budget at any length.
func TestDecodedSizeOfNodeLists(t *testing.T) {
	nodes := make([]any, 100000)
	for i := range nodes {
		nodes[i] = bytes.Repeat([]byte{byte(i)}, 20)
	}
	in, err := hgcbor.Marshal(nodes)
	require.NoError(t, err)
	_, size, err := hgcbor.DecodeOptions{}.Check(in)
	require.NoError(t, err)
	t.Logf("%d bytes of node ids: decoded size %d (%.2f per input byte)", len(in), size, float64(size)/float64(len(in)))
}
