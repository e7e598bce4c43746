package reactor

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

// decodePieces pushes comp to d in pieces of chunk bytes and reads all it
// makes decodable after each, checking the size of every piece.
func decodePieces(t testing.TB, d decoder, comp []byte, chunk int) ([]byte, error) {
	var got []byte
	buf := make([]byte, decodeChunk+1)
	for off := 0; off < len(comp); off += chunk {
		if err := d.push(comp[off:min(len(comp), off+chunk)]); err != nil {
			return got, err
		}
		for {
			n, more, err := d.read(buf)
			require.LessOrEqual(t, n, decodeChunk)
			got = append(got, buf[:n]...)
			if err != nil {
				return got, err
			}
			if !more {
				break
			}
		}
	}
	return got, nil
}

func newTestDecoder(t testing.TB, name string, max int) decoder {
	d, err := newDecoder(name, false, max)
	require.NoError(t, err)
	return d
}

func TestZlibDecoderChecksum(t *testing.T) {
	good := zlibBytes(t, bytes.Repeat([]byte("abc"), 1000))
	for _, chunk := range []int{1, 3, len(good)} {
		got, err := decodePieces(t, newTestDecoder(t, EncodingZlib, 1<<20), good, chunk)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte("abc"), 1000), got)

		bad := bytes.Clone(good)
		bad[len(bad)-1] ^= 1
		got, err = decodePieces(t, newTestDecoder(t, EncodingZlib, 1<<20), bad, chunk)
		require.ErrorIs(t, err, zlib.ErrChecksum, "chunk %d", chunk)
		require.Contains(t, err.Error(), "invalid checksum")
		require.Equal(t, bytes.Repeat([]byte("abc"), 1000), got, "the data comes out before the trailer is read")

		_, err = decodePieces(t, newTestDecoder(t, EncodingZlib, 1<<20), append(bytes.Clone(good), 0), chunk)
		require.ErrorContains(t, err, "data after the end of the zlib stream")
	}
	_, err := decodePieces(t, newTestDecoder(t, EncodingZlib, 1<<20), []byte{0x78, 0x9d}, 1)
	require.ErrorIs(t, err, zlib.ErrHeader)
}

// zstdStream compresses data with the server's encoder, flushing a block
// after each of pieces parts, as Mercurial's server does at each
// response's end.
func zstdStream(data []byte, pieces int) []byte {
	enc := newZstdEncoder()
	var comp []byte
	step := max(1, len(data)/max(1, pieces))
	for off := 0; off < len(data); off += step {
		comp = enc.Encode(comp, data[off:min(len(data), off+step)])
		comp = enc.Flush(comp)
	}
	return comp
}

func TestZstdDecoderPushed(t *testing.T) {
	before := runtime.NumGoroutine()
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{1, 1000, 300000, 1 << 20} {
		data := testData(r, size)
		comp := zstdStream(data, 1+r.IntN(4))
		for _, chunk := range []int{1, 100, 32768, 1 << 22} {
			if chunk == 1 && size > 1000 {
				continue
			}
			got, err := decodePieces(t, newTestDecoder(t, EncodingZstd8MB, 1<<22), comp, chunk)
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "size %d chunk %d: got %d bytes", size, chunk, len(got))
		}
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "the zstd decoder and encoder start no goroutines")
}

func TestZstdDecoderCorrupt(t *testing.T) {
	comp := zstdStream(bytes.Repeat([]byte("abcdefgh"), 1000), 1)
	comp[len(comp)-5] ^= 0xff
	_, err := decodePieces(t, newTestDecoder(t, EncodingZstd8MB, 1<<20), comp, len(comp))
	require.Error(t, err)
}

// zstdBlock returns a block header and body: typ 0 raw (size bytes of
// fill), 1 RLE (size copies of fill).
func zstdBlock(typ, size int, fill byte, last bool) []byte {
	h := size<<3 | typ<<1
	if last {
		h |= 1
	}
	b := []byte{byte(h), byte(h >> 8), byte(h >> 16)}
	if typ == 1 {
		return append(b, fill)
	}
	return append(b, bytes.Repeat([]byte{fill}, size)...)
}

// countingReader serves src and records how far it has been read.
type countingReader struct {
	src []byte
	off int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.off == len(r.src) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.src[r.off:])
	r.off += n
	return n, nil
}

// TestZstdDecoderReadContract pins what zstdDecoder relies on in
// github.com/klauspost/compress/zstd beyond its documentation: with
// concurrency 1, a Read (buffer larger than a block) that starts with no
// output pending reads whole units up to the first block with output and
// returns exactly that block's output, reading nothing past it; blocks
// without output (empty raw blocks, compressed blocks with no literals or
// sequences) and skippable frames are passed over. If an upgrade breaks
// this, zstdDecoder reports errZstdOverread on real streams: fix it
// against the new behaviour before upgrading.
func TestZstdDecoderReadContract(t *testing.T) {
	frameHdr := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3} // no checksum, 8 MiB window
	var src []byte
	var ends []int // where each Read must leave the reader
	var sizes []int
	add := func(b []byte, output int) {
		src = append(src, b...)
		if output > 0 {
			ends = append(ends, len(src))
			sizes = append(sizes, output)
		}
	}
	add(frameHdr, 0)
	add(zstdBlock(1, 5, 'a', false), 5)
	add(zstdBlock(0, 0, 0, false), 0)       // an empty raw block
	add([]byte{2<<3 | 2<<1, 0, 0, 0, 0}, 0) // a compressed block with no literals and no sequences
	add(zstdBlock(0, 100000, 'b', false), 100000)
	add(zstdBlock(1, 128<<10, 'c', false), 128<<10)
	add(zstdBlock(0, 7, 'd', true), 7)
	add([]byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3}, 0) // a skippable frame
	enc := newZstdEncoder()
	flushed := enc.Flush(enc.Encode(nil, []byte("compressed block")))
	add(flushed, len("compressed block"))
	add(enc.Finish(nil), 0)
	add(frameHdr, 0)
	add(zstdBlock(1, 3, 'e', true), 3)

	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20))
	require.NoError(t, err)
	defer d.Close()
	cr := &countingReader{src: src}
	require.NoError(t, d.Reset(cr))
	buf := make([]byte, decodeChunk+1)
	for i, end := range ends {
		n, err := d.Read(buf)
		require.NoError(t, err, "read %d", i)
		require.Equal(t, sizes[i], n, "read %d: klauspost/compress/zstd no longer returns one block per Read", i)
		require.Equal(t, end, cr.off, "read %d: klauspost/compress/zstd no longer reads exactly up to the block it returns", i)
	}
	// The scan agrees about where the blocks with output end.
	z := &zstdDecoder{max: 1 << 20}
	require.NoError(t, z.push(src))
	require.Equal(t, ends[len(ends)-1], z.ready)
	got, err := decodePieces(t, newTestDecoder(t, EncodingZstd8MB, 1<<20), src, 1)
	require.NoError(t, err)
	// (DecodeAll on d would wait for ever for d's one block decoder, which
	// the stream holds.)
	all, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	require.NoError(t, err)
	defer all.Close()
	want, err := all.DecodeAll(src, nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// FuzzZstd checks the pushed zstd decoder against klauspost's DecodeAll:
// no panic, the same output whenever DecodeAll succeeds, never more than a
// prefix of the streaming decoder's output otherwise, no piece larger than
// decodeChunk, and output bounded by the cap it is read under.
func FuzzZstd(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	f.Add(zstdStream(testData(r, 5000), 3), uint16(100))
	f.Add(zstdStream(bytes.Repeat([]byte("x"), 300000), 2), uint16(7))
	f.Add(zstdRLEBomb(40), uint16(5))
	f.Add(append(zstdBlock(0, 0, 0, false), 1), uint16(1))
	const capBytes = 1 << 20
	f.Fuzz(func(t *testing.T, comp []byte, chunk uint16) {
		d := newTestDecoder(t, EncodingZstd8MB, 1<<16)
		var got []byte
		var err error
		buf := make([]byte, decodeChunk+1)
		step := int(chunk) + 1
	feed:
		for off := 0; off < len(comp); off += step {
			if err = d.push(comp[off:min(len(comp), off+step)]); err != nil {
				break
			}
			for {
				n, more, rerr := d.read(buf)
				require.LessOrEqual(t, n, decodeChunk)
				got = append(got, buf[:n]...)
				if err = rerr; err != nil || len(got) > capBytes {
					break feed
				}
				if !more {
					break
				}
			}
		}
		require.LessOrEqual(t, len(got), capBytes+decodeChunk, "output beyond the cap by more than a piece")
		require.False(t, errors.Is(err, errZstdOverread), "the decoder read past the complete blocks")
		ref, rerr := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20),
			zstd.WithDecoderMaxMemory(8<<20))
		require.NoError(t, rerr)
		defer ref.Close()
		want, werr := ref.DecodeAll(comp, nil)
		if werr == nil && err == nil && len(got) <= capBytes && len(comp) <= 1<<16 {
			require.True(t, bytes.Equal(want, got), "ours %d bytes, DecodeAll %d", len(got), len(want))
			return
		}
		// Otherwise what we decoded is a prefix of what the streaming
		// reader decodes.
		require.NoError(t, ref.Reset(bytes.NewReader(comp)))
		stream, _ := io.ReadAll(io.LimitReader(ref, int64(len(got))))
		require.True(t, bytes.Equal(stream, got), "ours %d bytes differ from the stream's first %d (%v, DecodeAll: %v)", len(got), len(stream), err, werr)
	})
}
