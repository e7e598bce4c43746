package reactor

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
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

// inflateAll pushes comp to inf in pieces of chunk bytes and reads after
// each push with a buffer of out bytes, checking that no read returns more
// than the buffer.
func inflateAll(t testing.TB, inf *inflater, comp []byte, chunk, out int) ([]byte, error) {
	var got []byte
	buf := make([]byte, out)
	for off := 0; off < len(comp); off += chunk {
		if err := inf.push(comp[off:min(len(comp), off+chunk)]); err != nil {
			return got, err
		}
		for {
			n, err := inf.read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				return got, err
			}
			if n < len(buf) {
				break
			}
		}
	}
	return got, nil
}

func TestInflaterMatchesCompressFlate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, 4, flate.DefaultCompression, flate.BestCompression, flate.HuffmanOnly} {
		for _, size := range []int{0, 1, 100, 5000, 70000, 300000} {
			data := testData(r, size)
			comp := deflateWithFlushes(t, data, level, 1+r.IntN(5))
			for _, chunk := range []int{1, 7, 1000, 1 << 20} {
				for _, out := range []int{1, 300, decodeChunk} {
					if chunk == 1 && out == 1 && size > 5000 {
						continue
					}
					inf := inflater{max: 1 << 30}
					got, err := inflateAll(t, &inf, comp, chunk, out)
					require.NoError(t, err)
					require.True(t, bytes.Equal(data, got), "level %d size %d chunk %d out %d: got %d bytes", level, size, chunk, out, len(got))
				}
			}
		}
	}
}

// TestInflaterOutputAsSoonAsDecodable checks that every byte of input
// yields the output it completes: after each byte the output is never
// behind what compress/flate reads from that prefix (flate's reader hands
// out what it decoded before it fails on the missing rest, but it looks
// ahead further; the client vectors compare with zlib itself exactly).
func TestInflaterOutputAsSoonAsDecodable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.HuffmanOnly} {
		data := testData(r, 3000)
		comp := deflateWithFlushes(t, data, level, 3)
		inf := inflater{max: 1 << 20}
		var got []byte
		buf := make([]byte, decodeChunk)
		for i := range comp {
			require.NoError(t, inf.push(comp[i:i+1]))
			n, err := inf.read(buf)
			require.NoError(t, err)
			got = append(got, buf[:n]...)
			want, _ := readAllFlate(comp[:i+1])
			require.GreaterOrEqual(t, len(got), len(want), "level %d: after %d of %d bytes", level, i+1, len(comp))
			require.True(t, bytes.Equal(data[:len(got)], got))
		}
		require.Equal(t, data, got)
	}
}

func TestInflaterFinalBlockAndCorruption(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	_, _ = w.Write([]byte("hello, hello, hello"))
	require.NoError(t, w.Close())
	inf := inflater{max: 1 << 20}
	out, err := inflateAll(t, &inf, buf.Bytes(), 1<<20, 100)
	require.NoError(t, err)
	require.Equal(t, "hello, hello, hello", string(out))
	require.True(t, inf.done())
	require.ErrorIs(t, inf.push([]byte{1}), errInflateCorrupt)

	for name, comp := range map[string][]byte{
		"block type 3":                   {0x07},
		"stored block length check":      {0x00, 5, 0, 5, 0},
		"distance before stream's start": deflateRef(t),
	} {
		inf = inflater{max: 1 << 20}
		_, err = inflateAll(t, &inf, comp, 1<<20, 100)
		require.ErrorIs(t, err, errInflateCorrupt, name)
	}
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
	err := inf.push(make([]byte, 11))
	require.ErrorIs(t, err, action.ErrLimit)
	require.Equal(t, &action.LimitError{What: "compressed bytes held by the decoder", Size: 11, Limit: 10}, err)
}

// FuzzInflate checks the inflater against compress/flate on arbitrary
// input: no panic, what it decodes is what compress/flate decodes, and no
// read returns more than its buffer.
func FuzzInflate(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, level := range []int{0, 1, 6, 9, -2} {
		f.Add(deflateWithFlushes(f, testData(r, 3000), level, 3), uint8(13), uint16(100))
	}
	f.Add([]byte{0x07}, uint8(1), uint16(1))
	f.Fuzz(func(t *testing.T, comp []byte, chunk uint8, out uint16) {
		inf := inflater{max: 1 << 20}
		got, err := inflateAll(t, &inf, comp, int(chunk)+1, int(out)+1)
		want, werr := readAllFlate(comp)
		switch {
		case werr == nil && err == nil:
			require.True(t, bytes.Equal(want, got), "ours %x, flate %x", got, want)
		case werr == nil:
			// We fail (data after the final block, which flate ignores)
			// after a prefix of flate's output.
			require.True(t, bytes.HasPrefix(want, got), "ours %x, flate %x (%v)", got, want, err)
		case errors.Is(werr, io.ErrUnexpectedEOF) && err == nil:
			// Truncated: flate looks further ahead before it hands out
			// output, we decode what each step completes.
			require.True(t, bytes.HasPrefix(got, want), "ours %x, flate %x (%v)", got, want, err)
		default:
			// Both fail, or we reject what flate does not check (zlib
			// rejects a code with no end-of-block, as we do; flate decodes
			// on until the input ends).
			require.True(t, bytes.HasPrefix(got, want) || bytes.HasPrefix(want, got), "ours %x, flate %x (%v, %v)", got, want, err, werr)
		}
	})
}

func readAllFlate(comp []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(comp))
	var out bytes.Buffer
	_, err := out.ReadFrom(r)
	return out.Bytes(), err
}
