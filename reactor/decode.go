package reactor

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// decoder is a client stream's content decoder, fed compressed payloads as
// frames arrive (push style) and returning the bytes they complete.
type decoder interface {
	name() string
	// decode returns what p completes. The result is owned by the caller.
	// end says p ends a response, where the server flushed its encoder.
	decode(p []byte, end bool) ([]byte, error)
	// endOfResponse says an encoded eos frame ended: the server flushed
	// its compressor there, so everything so far decodes on its own.
	endOfResponse()
}

func newDecoder(name string, extra bool, maxBuffer int) (decoder, error) {
	var d decoder
	label := name
	switch name {
	case EncodingIdentity:
		d = identityDecoder{}
	case EncodingZlib:
		d = &zlibDecoder{max: maxBuffer}
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

type identityDecoder struct{}

func (identityDecoder) name() string                            { return EncodingIdentity }
func (identityDecoder) decode(p []byte, _ bool) ([]byte, error) { return p, nil }
func (identityDecoder) endOfResponse()                          {}

// errBufferLimit is returned when a decoder would keep more compressed
// bytes than allowed.
var errBufferLimit = errors.New("compressed response exceeds the decoder buffer limit")

// zlibDecoder decodes a zlib stream pushed in pieces, with the push-style
// inflater: output comes out block by block as the server's compressor
// emits them, and memory stays at one block plus the window.
type zlibDecoder struct {
	max     int
	header  []byte // the 2-byte zlib header, until complete
	started bool
	trailer int // checksum bytes seen after the final block
	inf     inflater
}

func (z *zlibDecoder) name() string { return EncodingZlib }

func (z *zlibDecoder) decode(p []byte, end bool) ([]byte, error) {
	if !z.started {
		n := min(2-len(z.header), len(p))
		z.header = append(z.header, p[:n]...)
		p = p[n:]
		if len(z.header) < 2 {
			return []byte{}, nil
		}
		cmf, flg := z.header[0], z.header[1]
		if cmf&0x0f != 8 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
			return nil, errors.New("incorrect zlib header check")
		}
		if flg&0x20 != 0 {
			return nil, errors.New("zlib preset dictionaries are not supported")
		}
		z.started = true
		z.inf.max = z.max
	}
	if z.inf.done {
		// The stream was finished: only its Adler-32 checksum may follow.
		z.trailer += len(p)
		if z.trailer > 4 {
			return nil, errors.New("data after the end of the zlib stream")
		}
		return []byte{}, nil
	}
	out, err := z.inf.push([]byte{}, p, end)
	if err != nil {
		return nil, err
	}
	if z.inf.done {
		z.trailer = len(z.inf.in) - int((z.inf.bit+7)/8)
		if z.trailer > 4 {
			return nil, errors.New("data after the end of the zlib stream")
		}
	}
	return out, nil
}

func (z *zlibDecoder) endOfResponse() {}

// zstdDecoder decodes a zstd stream pushed in pieces.
//
// klauspost/compress's decoder pulls from a reader and fails for good when
// the reader runs dry. Its synchronous mode (concurrency 1, no goroutines)
// reads a block's header and body, decodes the block and, in WriteTo, writes
// the block's output before it reads the next header. So the decoder's
// reader is handed only complete units — a frame header, a whole block (with
// the checksum after a last block) — and when it asks for a unit that has
// not arrived, the reader stops it with a private panic, which decode
// recovers: at that point nothing of the next unit has been consumed and
// every complete block's output has been written. The next push resumes
// with the next header read. Memory is one block (at most 128 KiB) plus the
// decoder's window; the work is linear.
type zstdDecoder struct {
	max  int
	d    *zstd.Decoder
	sink byteSink

	pend  []byte // received bytes not yet read by the decoder
	off   int    // read offset in pend
	avail int    // pend[:avail] holds complete units
	inBlk bool   // the next unit is a block (else a frame header)
	sum   bool   // the current frame has a checksum
}

// zstdNeedMore is the panic value that stops the decoder at a unit it
// cannot have yet.
type zstdNeedMore struct{}

func (z *zstdDecoder) name() string { return EncodingZstd8MB }

func (z *zstdDecoder) Read(p []byte) (int, error) {
	if z.off == z.avail {
		panic(zstdNeedMore{})
	}
	n := copy(p, z.pend[z.off:z.avail])
	z.off += n
	return n, nil
}

// scan extends avail over the complete units in pend.
func (z *zstdDecoder) scan() {
	for {
		rest := z.pend[z.avail:]
		var n int
		if !z.inBlk {
			if len(rest) < 5 {
				return
			}
			magic := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16 | uint32(rest[3])<<24
			switch {
			case magic&0xfffffff0 == 0x184d2a50: // skippable frame
				if len(rest) < 8 {
					return
				}
				n = 8 + int(uint32(rest[4])|uint32(rest[5])<<8|uint32(rest[6])<<16|uint32(rest[7])<<24)
			case magic == 0xfd2fb528:
				fhd := rest[4]
				single := fhd&0x20 != 0
				n = 5 + [4]int{0, 1, 2, 4}[fhd&3]
				if !single {
					n++
				}
				switch fhd >> 6 {
				case 0:
					if single {
						n++
					}
				case 1:
					n += 2
				case 2:
					n += 4
				case 3:
					n += 8
				}
				z.sum = fhd&4 != 0
				if len(rest) >= n {
					z.inBlk = true
				}
			default:
				n = 4 // the decoder rejects it
			}
		} else {
			if len(rest) < 3 {
				return
			}
			h := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			last, typ, size := h&1 != 0, h>>1&3, int(h>>3)
			n = 3
			switch typ {
			case 0, 2:
				n += size
			case 1:
				n++
			}
			if last {
				if z.sum {
					n += 4
				}
				if len(rest) >= n {
					z.inBlk = false
				}
			}
		}
		if len(rest) < n {
			return
		}
		z.avail += n
	}
}

func (z *zstdDecoder) decode(p []byte, _ bool) (out []byte, err error) {
	if len(z.pend)-z.off+len(p) > z.max {
		return nil, errBufferLimit
	}
	z.pend = append(z.pend, p...)
	z.scan()
	if z.avail == z.off {
		return []byte{}, nil
	}
	if z.d == nil {
		z.d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, err
		}
		if err := z.d.Reset(z); err != nil {
			return nil, err
		}
	}
	z.sink.b = []byte{}
	err = z.writeTo()
	out, z.sink.b = z.sink.b, nil
	// Drop what the decoder has read.
	n := copy(z.pend, z.pend[z.off:])
	z.pend = z.pend[:n]
	z.avail -= z.off
	z.off = 0
	return out, err
}

// writeTo runs the decoder until it needs a unit not yet received.
func (z *zstdDecoder) writeTo() (err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(zstdNeedMore); !ok {
				panic(r)
			}
			err = nil
		}
	}()
	_, err = z.d.WriteTo(&z.sink)
	if err == nil {
		err = errors.New("zstd decoder stopped")
	}
	return err
}

func (z *zstdDecoder) endOfResponse() {}
