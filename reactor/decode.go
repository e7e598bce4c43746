package reactor

import (
	"compress/zlib"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"

	"github.com/klauspost/compress/zstd"

	"github.com/wirereactor/wirereactor/action"
)

// decodeChunk is the most decoded output a stream decoder produces at
// once, and so the largest Data of a Response delivered from an encoded
// command response frame: zstd's largest block. (Frames of other types
// are decoded whole: see ClientMachine.decodeWhole.)
const decodeChunk = 128 << 10

// decoder is a client stream's content decoder. The compressed payload of
// each encoded frame is pushed as it arrives; read then hands out the
// output it makes decodable, chunk by chunk, as soon as it decodes.
type decoder interface {
	name() string
	// push hands over compressed bytes (copied as needed). It fails when
	// the decoder would keep more than its limit of compressed bytes.
	push(p []byte) error
	// read decodes into dst, which holds decodeChunk+1 bytes, at most
	// decodeChunk bytes. more says that another read may produce more
	// without more input; n == 0 with more unset means the input so far
	// is used up.
	read(dst []byte) (n int, more bool, err error)
}

// newDecoder returns the decoder for a stream settings' encoding name, nil
// for identity (frames pass through as they are).
func newDecoder(name string, extra bool, maxBuffer int) (decoder, error) {
	var d decoder
	label := name
	switch name {
	case EncodingIdentity:
	case EncodingZlib:
		d = &zlibDecoder{inf: inflater{max: maxBuffer}, sum: adler32.New()}
	case EncodingZstd8MB:
		d = &zstdDecoder{max: maxBuffer}
		label = "zstd8mb"
	default:
		return nil, fmt.Errorf("unknown stream decoder: %s", name)
	}
	if extra {
		return nil, fmt.Errorf("%s decoder received unexpected additional values", label)
	}
	return d, nil
}

// bufferLimit is returned when a decoder would keep more compressed bytes
// than allowed (ClientMachineConfig.MaxDecoderBuffer).
func bufferLimit(size, limit int) error {
	return &action.LimitError{What: "compressed bytes held by the decoder", Size: int64(size), Limit: int64(limit)}
}

// zlibDecoder decodes a zlib stream (RFC 1950) pushed in pieces with the
// resumable inflater, and checks its Adler-32 trailer as compress/zlib
// and zlib itself do.
type zlibDecoder struct {
	header  []byte // the 2-byte zlib header, until complete
	started bool
	inf     inflater
	sum     hash.Hash32
	trailer []byte // checksum bytes after the final block
	ended   bool   // the final block was decoded and its rest taken
	err     error  // a checksum error, reported after the output
}

func (z *zlibDecoder) name() string { return EncodingZlib }

func (z *zlibDecoder) push(p []byte) error {
	if !z.started {
		n := min(2-len(z.header), len(p))
		z.header = append(z.header, p[:n]...)
		p = p[n:]
		if len(z.header) < 2 {
			return nil
		}
		cmf, flg := z.header[0], z.header[1]
		if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
			return zlib.ErrHeader
		}
		if flg&0x20 != 0 {
			return fmt.Errorf("%w: preset dictionaries are not supported", zlib.ErrDictionary)
		}
		z.started = true
	}
	if z.ended {
		return z.takeTrailer(p)
	}
	return z.inf.push(p)
}

// takeTrailer takes bytes after the final block: the big-endian Adler-32
// of the decoded data, then nothing.
func (z *zlibDecoder) takeTrailer(p []byte) error {
	if len(z.trailer)+len(p) > 4 {
		return errors.New("data after the end of the zlib stream")
	}
	z.trailer = append(z.trailer, p...)
	if len(z.trailer) == 4 {
		want := uint32(z.trailer[0])<<24 | uint32(z.trailer[1])<<16 | uint32(z.trailer[2])<<8 | uint32(z.trailer[3])
		if got := z.sum.Sum32(); got != want {
			return fmt.Errorf("%w (Adler-32 %08x, trailer says %08x)", zlib.ErrChecksum, got, want)
		}
	}
	return nil
}

func (z *zlibDecoder) read(dst []byte) (int, bool, error) {
	if z.err != nil {
		return 0, false, z.err
	}
	if !z.started || z.ended {
		return 0, false, nil
	}
	dst = dst[:decodeChunk]
	n, err := z.inf.read(dst)
	if err != nil {
		return 0, false, err
	}
	_, _ = z.sum.Write(dst[:n]) // a hash never fails
	if z.inf.done() {
		z.ended = true
		rest := z.inf.rest()
		z.inf.in = nil
		if err := z.takeTrailer(rest); err != nil {
			// The output comes first, then the error, as in compress/zlib.
			z.err = err
			return n, true, nil
		}
		return n, false, nil
	}
	return n, n == len(dst), nil
}

// zstdDecoder decodes a zstd stream pushed in pieces.
//
// klauspost/compress's decoder pulls from an io.Reader and fails for good
// when the reader fails, so it must never ask for bytes that have not
// arrived. The decoder runs synchronously (concurrency 1: no goroutines)
// and is fed through Read with a buffer larger than any block's output.
// What it does then (pinned by TestZstdDecoderReadContract, since the
// documentation does not promise it): each Read that starts with no output
// pending reads units from the reader — frame headers, skippable frames,
// blocks, each whole — up to and including the first block that has
// output, decodes it and returns all of that block's output, reading
// nothing more. So scan parses the units as they arrive, noting where the
// complete ones end and which blocks have output, and read calls Read only
// while a complete block with output lies ahead. The reader serves complete
// units only; should the decoder ever ask for more, it gets an error
// (errZstdOverread) and the stream fails with that error, never blocking
// or panicking. Memory is the decoder's window (at most 8 MiB, zstd-8mb's
// limit), one block of output and the compressed bytes not yet decoded.
type zstdDecoder struct {
	max int
	d   *zstd.Decoder

	pend  []byte // received bytes not yet read by the decoder
	off   int    // read offset in pend
	avail int    // pend[:avail] holds complete units
	ready int    // pend[:ready] ends with a complete block that has output
	inBlk bool   // the next unit is a block (else a frame header)
	sum   bool   // the current frame has a checksum
}

// errZstdOverread is what the decoder's reader answers when asked for
// bytes beyond the complete units: the decoder no longer behaves as
// zstdDecoder relies on.
var errZstdOverread = errors.New("the zstd decoder read past the complete blocks (github.com/klauspost/compress behaves differently than this reactor relies on)")

func (z *zstdDecoder) name() string { return EncodingZstd8MB }

// Read serves the decoder complete units.
func (z *zstdDecoder) Read(p []byte) (int, error) {
	if z.off == z.avail {
		return 0, errZstdOverread
	}
	n := copy(p, z.pend[z.off:z.avail])
	z.off += n
	return n, nil
}

func (z *zstdDecoder) push(p []byte) error {
	// Drop what the decoder has read.
	k := copy(z.pend, z.pend[z.off:])
	z.pend = z.pend[:k]
	z.avail -= z.off
	z.ready = max(0, z.ready-z.off)
	z.off = 0
	if len(z.pend)+len(p) > z.max {
		return bufferLimit(len(z.pend)+len(p), z.max)
	}
	z.pend = append(z.pend, p...)
	z.scan()
	return nil
}

func (z *zstdDecoder) read(dst []byte) (int, bool, error) {
	if z.ready <= z.off {
		return 0, false, nil
	}
	if z.d == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return 0, false, err
		}
		if err := d.Reset(z); err != nil {
			return 0, false, err
		}
		z.d = d
	}
	n, err := z.d.Read(dst)
	switch {
	case err != nil:
		return 0, false, err
	case n == 0 || n > decodeChunk:
		// A block with output gave none, or one gave more than a block can.
		return 0, false, fmt.Errorf("zstd decoder returned %d bytes for one block (github.com/klauspost/compress behaves differently than this reactor relies on)", n)
	}
	return n, z.ready > z.off, nil
}

func le(b []byte) int {
	v := 0
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | int(b[i])
	}
	return v
}

// scan extends avail over the complete units in pend, and ready over the
// complete blocks that have output.
func (z *zstdDecoder) scan() {
	for {
		rest := z.pend[z.avail:]
		var n int
		output := false
		if !z.inBlk {
			if len(rest) < 5 {
				return
			}
			switch magic := le(rest[:4]); {
			case magic&0xfffffff0 == 0x184d2a50: // skippable frame
				if len(rest) < 8 {
					return
				}
				n = 8 + le(rest[4:8])
			case magic == 0xfd2fb528:
				fhd := rest[4]
				single := fhd&0x20 != 0
				n = 5 + [4]int{0, 1, 2, 4}[fhd&3]
				if !single {
					n++
				}
				n += [4]int{0, 2, 4, 8}[fhd>>6]
				if fhd>>6 == 0 && single {
					n++
				}
				if len(rest) >= n {
					z.sum = fhd&4 != 0
					z.inBlk = true
				}
			default:
				n, output = 4, true // the decoder rejects it
			}
		} else {
			if len(rest) < 3 {
				return
			}
			h := le(rest[:3])
			last, typ, size := h&1 != 0, h>>1&3, h>>3
			n = 3
			switch typ {
			case 0: // raw
				n += size
				output = size > 0
			case 1: // RLE
				n++
				output = size > 0
			case 2: // compressed
				n += size
				if len(rest) >= n {
					output = zstdBlockHasOutput(rest[3:n])
				}
			default:
				output = true // the decoder rejects it
			}
			if last && z.sum {
				n += 4
			}
			if last && len(rest) >= n {
				z.inBlk = false
			}
		}
		if len(rest) < n {
			return
		}
		z.avail += n
		if output {
			z.ready = z.avail
		}
	}
}

// zstdBlockHasOutput reports whether a compressed block's body decodes to
// any bytes: it has literals or sequences. A body too short to tell is
// counted as having output, so that the decoder reads it and rejects it.
func zstdBlockHasOutput(body []byte) bool {
	if len(body) == 0 {
		return true
	}
	b0 := body[0]
	var hdr, regen, content int
	switch sf := b0 >> 2 & 3; b0 & 3 {
	case 0, 1: // raw or RLE literals
		switch sf {
		case 0, 2:
			hdr, regen = 1, int(b0>>3)
		case 1:
			hdr = 2
		default:
			hdr = 3
		}
		if len(body) < hdr {
			return true
		}
		if hdr > 1 {
			regen = le(body[:hdr]) >> 4
		}
		content = regen
		if b0&3 == 1 {
			content = 1
		}
	default: // Huffman-coded literals
		bits := [4]int{10, 10, 14, 18}[sf]
		hdr = [4]int{3, 3, 4, 5}[sf]
		if len(body) < hdr {
			return true
		}
		v := le(body[:hdr]) >> 4
		regen, content = v&(1<<bits-1), v>>bits&(1<<bits-1)
	}
	if regen > 0 {
		return true
	}
	i := hdr + content
	return i >= len(body) || body[i] != 0 // a sequence count of zero
}
