package reactor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

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

// zstdDecoder decodes a zstd stream pushed in pieces. The stream is one
// zstd frame whose blocks depend on all earlier ones, and the zstd decoder
// too fails for good when its reader runs dry, so every push decodes the
// stream from its start and hands out the new output: quadratic, bounded
// by the buffer limit.
type zstdDecoder struct {
	max      int
	in       []byte
	produced int
	d        *zstd.Decoder
	br       bytes.Reader
}

func (z *zstdDecoder) name() string { return EncodingZstd8MB }

func (z *zstdDecoder) decode(p []byte, _ bool) ([]byte, error) {
	if len(p) == 0 {
		return []byte{}, nil
	}
	if len(z.in)+len(p) > z.max {
		return nil, errBufferLimit
	}
	z.in = append(z.in, p...)
	z.br.Reset(z.in)
	if z.d == nil {
		d, err := zstd.NewReader(&z.br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20),
			zstd.WithDecoderMaxMemory(uint64(z.max)*8))
		if err != nil {
			return nil, err
		}
		z.d = d
	} else if err := z.d.Reset(&z.br); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err := io.Copy(&buf, z.d)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	all := buf.Bytes()
	if len(all) < z.produced {
		return nil, errors.New("inconsistent zstd stream")
	}
	fresh := slices.Clone(all[z.produced:])
	z.produced = len(all)
	return fresh, nil
}

func (z *zstdDecoder) endOfResponse() {}
