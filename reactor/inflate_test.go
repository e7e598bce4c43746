package reactor

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func testData(r *rand.Rand, n int) []byte {
	words := [][]byte{[]byte("changeset "), []byte("manifest "), []byte("0123456789abcdef"), []byte("\n"), {0, 1, 2}}
	var b []byte
	for len(b) < n {
		if r.IntN(4) == 0 {
			b = append(b, byte(r.UintN(256)))
		} else {
			b = append(b, words[r.IntN(len(words))]...)
		}
	}
	return b[:n]
}

// deflateWithFlushes compresses data at level, sync-flushing after each of
// the given piece sizes, as Mercurial's server flushes at ends of responses.
func deflateWithFlushes(t testing.TB, data []byte, level int, pieces int) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	require.NoError(t, err)
	step := max(1, len(data)/max(1, pieces))
	for off := 0; off < len(data); off += step {
		_, err := w.Write(data[off:min(len(data), off+step)])
		require.NoError(t, err)
		require.NoError(t, w.Flush())
	}
	return buf.Bytes()
}

func TestInflaterMatchesCompressFlate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, 4, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly} {
		for _, size := range []int{0, 1, 100, 5000, 70000, 300000} {
			data := testData(r, size)
			comp := deflateWithFlushes(t, data, level, 1+r.IntN(5))
			for _, chunk := range []int{1, 7, 1000, 1 << 20} {
				inf := inflater{max: 1 << 30}
				var out []byte
				for off := 0; off < len(comp); off += chunk {
					var err error
					end := off+chunk >= len(comp)
					out, err = inf.push(out, comp[off:min(len(comp), off+chunk)], end)
					require.NoError(t, err)
				}
				require.True(t, bytes.Equal(data, out), "level %d size %d chunk %d: got %d bytes", level, size, chunk, len(out))
			}
		}
	}
}

func TestInflaterFinalBlockAndCorruption(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	_, _ = w.Write([]byte("hello, hello, hello"))
	require.NoError(t, w.Close())
	inf := inflater{max: 1 << 20}
	out, err := inf.push(nil, buf.Bytes(), true)
	require.NoError(t, err)
	require.Equal(t, "hello, hello, hello", string(out))
	require.True(t, inf.done)
	_, err = inf.push(nil, []byte{1}, true)
	require.ErrorIs(t, err, errInflateCorrupt)

	// Block type 3 is invalid.
	inf = inflater{max: 1 << 20}
	_, err = inf.push(nil, []byte{0x07}, true)
	require.ErrorIs(t, err, errInflateCorrupt)
	// A stored block whose length check fails.
	inf = inflater{max: 1 << 20}
	_, err = inf.push(nil, []byte{0x00, 5, 0, 5, 0}, true)
	require.ErrorIs(t, err, errInflateCorrupt)
	// A distance reaching before the start of the stream.
	inf = inflater{max: 1 << 20}
	_, err = inf.push(nil, deflateRef(t), true)
	require.ErrorIs(t, err, errInflateCorrupt)
}

// deflateRef builds a fixed-Huffman block with a back reference at the
// very start of a stream.
func deflateRef(t testing.TB) []byte {
	// BFINAL=1, BTYPE=01, then length code 257 (0000001, 7 bits) and
	// distance code 0 (00000, 5 bits).
	var bits []uint8
	put := func(v uint32, n int, msbFirst bool) {
		for i := 0; i < n; i++ {
			if msbFirst {
				bits = append(bits, uint8(v>>(n-1-i)&1))
			} else {
				bits = append(bits, uint8(v>>i&1))
			}
		}
	}
	put(1, 1, false)
	put(1, 2, false)
	put(1, 7, true)
	put(0, 5, true)
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		out[i/8] |= b << (i % 8)
	}
	return out
}

func TestInflaterBufferLimit(t *testing.T) {
	inf := inflater{max: 10}
	_, err := inf.push(nil, make([]byte, 11), false)
	require.ErrorIs(t, err, errBufferLimit)
}

func TestZlibDecoderTrailer(t *testing.T) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write([]byte("abc"))
	require.NoError(t, w.Close())
	d := &zlibDecoder{max: 1 << 20}
	var out []byte
	for i, b := range buf.Bytes() {
		o, err := d.decode([]byte{b}, i == buf.Len()-1)
		require.NoError(t, err)
		out = append(out, o...)
	}
	require.Equal(t, "abc", string(out))
	_, err := d.decode([]byte{0}, false)
	require.Error(t, err)
}

// FuzzInflate checks the inflater against compress/flate on arbitrary
// input: no panic, and what it decodes is what compress/flate decodes.
func FuzzInflate(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, level := range []int{0, 1, 6, 9, -2} {
		f.Add(deflateWithFlushes(f, testData(r, 3000), level, 3), uint8(13))
	}
	f.Add([]byte{0x07}, uint8(1))
	f.Fuzz(func(t *testing.T, comp []byte, chunk uint8) {
		inf := inflater{max: 1 << 20}
		var out []byte
		var err error
		step := int(chunk) + 1
		for off := 0; off < len(comp) && err == nil; off += step {
			out, err = inf.push(out, comp[off:min(len(comp), off+step)], off+step >= len(comp))
		}
		want, werr := readAllFlate(comp)
		if err == nil && werr == nil {
			require.True(t, bytes.Equal(want, out), "ours %x, flate %x", out, want)
		}
		if err == nil {
			// Whatever we decoded, compress/flate decodes too.
			require.True(t, bytes.HasPrefix(want, out), "ours %x, flate %x (%v)", out, want, werr)
		}
	})
}

func readAllFlate(comp []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(comp))
	var out bytes.Buffer
	_, err := out.ReadFrom(r)
	return out.Bytes(), err
}

func TestZstdDecoderPushed(t *testing.T) {
	before := runtime.NumGoroutine()
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{1, 1000, 300000, 1 << 20} {
		data := testData(r, size)
		enc := newZstdEncoder()
		var comp []byte
		pieces := 1 + r.IntN(4)
		step := max(1, len(data)/pieces)
		for off := 0; off < len(data); off += step {
			comp = enc.Encode(comp, data[off:min(len(data), off+step)])
			comp = enc.Flush(comp)
		}
		for _, chunk := range []int{1, 100, 32768, 1 << 22} {
			if chunk == 1 && size > 1000 {
				continue
			}
			d := &zstdDecoder{max: 1 << 22}
			var out []byte
			for off := 0; off < len(comp); off += chunk {
				o, err := d.decode(comp[off:min(len(comp), off+chunk)], false)
				require.NoError(t, err)
				out = append(out, o...)
			}
			require.True(t, bytes.Equal(data, out), "size %d chunk %d: got %d bytes", size, chunk, len(out))
		}
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "the zstd decoder and encoder start no goroutines")
}

func TestZstdDecoderCorrupt(t *testing.T) {
	enc := newZstdEncoder()
	comp := enc.Flush(enc.Encode(nil, bytes.Repeat([]byte("abcdefgh"), 1000)))
	comp[len(comp)-5] ^= 0xff
	d := &zstdDecoder{max: 1 << 20}
	_, err := d.decode(comp, true)
	require.Error(t, err)
}
