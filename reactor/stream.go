package reactor

import (
	"compress/zlib"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
)

// Content encoding names, as Mercurial spells them in protocol and stream
// settings.
const (
	EncodingZstd8MB  = "zstd-8mb"
	EncodingZlib     = "zlib"
	EncodingIdentity = "identity"
)

// DefaultServerEncodings is the server's order of preference, Mercurial's:
// the server picks the first of these the client advertised.
var DefaultServerEncodings = []string{EncodingZstd8MB, EncodingZlib, EncodingIdentity}

// byteSink is an io.Writer appending to a slice the caller swaps in and out,
// so compressors write straight into the reactor's buffers.
type byteSink struct{ b []byte }

func (s *byteSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// The content encoders implement framing.Encoder; one encoder spans every
// response on its output stream: Flush ends a response without resetting
// the context.

// flushWriter is what the zlib and zstd writers have in common.
type flushWriter interface {
	Write(p []byte) (int, error)
	Flush() error
	Close() error
}

// compressEncoder runs a compressor writing into a byteSink that is
// pointed at the caller's dst for the duration of each call.
type compressEncoder struct {
	name string
	sink byteSink
	w    flushWriter
}

func (e *compressEncoder) Name() string { return e.name }

// run points the sink at dst, calls op and returns what op appended.
// Writes to a byteSink cannot fail, so op's error is always nil.
func (e *compressEncoder) run(dst []byte, op func() error) []byte {
	e.sink.b = dst
	_ = op()
	dst, e.sink.b = e.sink.b, nil
	return dst
}

func (e *compressEncoder) Encode(dst, p []byte) []byte {
	return e.run(dst, func() error { _, err := e.w.Write(p); return err })
}

// Flush is zlib's Z_SYNC_FLUSH or zstd's COMPRESSOBJ_FLUSH_BLOCK, as
// Mercurial does: the peer can decode everything so far and the context
// carries on.
func (e *compressEncoder) Flush(dst []byte) []byte { return e.run(dst, e.w.Flush) }

// Finish ends the compressed stream.
func (e *compressEncoder) Finish(dst []byte) []byte { return e.run(dst, e.w.Close) }

func newZlibEncoder() *compressEncoder {
	e := &compressEncoder{name: EncodingZlib}
	e.w = zlib.NewWriter(&e.sink)
	return e
}

func newZstdEncoder() *compressEncoder {
	e := &compressEncoder{name: EncodingZstd8MB}
	// One goroutine-free encoder (concurrency 1 encodes synchronously) at
	// zstd's default level 3, as Mercurial uses, with a window the peer's
	// 8 MiB decoder accepts.
	w, err := zstd.NewWriter(&e.sink, zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(1<<22),
		zstd.WithEncoderCRC(false))
	if err != nil {
		panic(fmt.Sprintf("reactor: zstd encoder options rejected: %v", err)) // constant options
	}
	e.w = w
	return e
}

func newEncoder(name string) framing.Encoder {
	switch name {
	case EncodingIdentity:
		return framing.IdentityEncoder{}
	case EncodingZlib:
		return newZlibEncoder()
	case EncodingZstd8MB:
		return newZstdEncoder()
	}
	return nil
}

// OutputStream is a server stream to the client: framing's output stream,
// made by ServerMachine.NewOutputStream with the content encoding
// negotiated. Stream settings go out with its first response.
type OutputStream = framing.OutputStream

func newOutputStream(id uint8, maxPayload int) *OutputStream {
	return framing.NewOutputStream(id, streamConfig(maxPayload))
}

// streamConfig splits frames at maxPayload, which the reactors' configs
// let exceed Mercurial's safe bound.
func streamConfig(maxPayload int) framing.OutputStreamConfig {
	return framing.OutputStreamConfig{MaxFramePayload: maxPayload, AllowLargePayloads: maxPayload >= frame.MercurialSafePayload}
}

// passThrough reports whether response data goes out on s as it is
// (identity encoding, or none), so that how it is cut into chunks for the
// emitter matters only where a frame fills up.
func passThrough(s *OutputStream) bool {
	switch s.Encoder().(type) {
	case nil, framing.IdentityEncoder:
		return true
	}
	return false
}

// sendCBOR feeds the encoded CBOR item b to the emitter in the chunks
// Mercurial's streaming encoder yields: every head on its own, and the
// content of each definite-length string on its own.
func sendCBOR(dst []byte, em *framing.ResponseEmitter, b []byte) ([]byte, error) {
	var err error
	for i := 0; i < len(b); {
		major, ai := b[i]>>5, b[i]&0x1f
		n, arg := 1, uint64(ai)
		switch ai {
		case 24:
			n, arg = 2, uint64(b[i+1])
		case 25:
			n, arg = 3, uint64(b[i+1])<<8|uint64(b[i+2])
		case 26:
			n = 5
			arg = uint64(b[i+1])<<24 | uint64(b[i+2])<<16 | uint64(b[i+3])<<8 | uint64(b[i+4])
		case 27:
			n = 9
			arg = 0
			for k := 1; k <= 8; k++ {
				arg = arg<<8 | uint64(b[i+k])
			}
		}
		if dst, err = em.Send(dst, b[i:i+n]); err != nil {
			return dst, err
		}
		i += n
		if (major == 2 || major == 3) && ai != 31 {
			if dst, err = em.Send(dst, b[i:i+int(arg)]); err != nil {
				return dst, err
			}
			i += int(arg)
		}
	}
	return dst, nil
}
