package reactor

import (
	"bytes"
	"compress/flate"
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
	decode(p []byte) ([]byte, error)
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

func (identityDecoder) name() string                    { return EncodingIdentity }
func (identityDecoder) decode(p []byte) ([]byte, error) { return p, nil }
func (identityDecoder) endOfResponse()                  {}

// errBufferLimit is returned when a decoder would keep more compressed
// bytes than allowed.
var errBufferLimit = errors.New("compressed response exceeds the decoder buffer limit")

// zlibDecoder decodes a zlib stream pushed in pieces. Go's inflater pulls
// from a reader and fails for good when the reader runs dry, so the decoder
// keeps the compressed bytes since the last restart point and inflates them
// again when more arrive, handing out only the new output. Restart points
// are the ends of responses, where the server sync-flushed: there a fresh
// inflater picks up with the last 32 KiB of output as its dictionary. The
// cost of a response is thus quadratic in its number of frames; bounded by
// the buffer limit.
type zlibDecoder struct {
	max      int
	header   []byte // the 2-byte zlib header, until complete
	started  bool
	in       []byte // raw deflate bytes since the restart point
	dict     []byte // up to 32 KiB of output before the restart point
	produced []byte // output since the restart point
	fr       io.ReadCloser
	br       bytes.Reader
}

func (z *zlibDecoder) name() string { return EncodingZlib }

func (z *zlibDecoder) decode(p []byte) ([]byte, error) {
	if !z.started {
		need := 2 - len(z.header)
		n := min(need, len(p))
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
	}
	if len(p) == 0 {
		return []byte{}, nil
	}
	if len(z.in)+len(p) > z.max {
		return nil, errBufferLimit
	}
	z.in = append(z.in, p...)
	z.br.Reset(z.in)
	if z.fr == nil {
		z.fr = flate.NewReaderDict(&z.br, z.dict)
	} else if err := z.fr.(flate.Resetter).Reset(&z.br, z.dict); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(z.produced)+4*len(p))
	buf := bytes.NewBuffer(out)
	_, err := io.Copy(buf, z.fr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	all := buf.Bytes()
	if len(all) < len(z.produced) || !bytes.Equal(all[:len(z.produced)], z.produced) {
		return nil, errors.New("inconsistent zlib stream")
	}
	fresh := slices.Clone(all[len(z.produced):])
	z.produced = all
	return fresh, nil
}

func (z *zlibDecoder) endOfResponse() {
	if !z.started {
		return
	}
	d := append(z.dict, z.produced...)
	if len(d) > 32<<10 {
		d = d[len(d)-32<<10:]
	}
	z.dict = slices.Clone(d)
	z.in = z.in[:0]
	z.produced = nil
}

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

func (z *zstdDecoder) decode(p []byte) ([]byte, error) {
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
