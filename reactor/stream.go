package reactor

import (
	"compress/zlib"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
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

// encoder is a stream content encoder. One encoder spans every response on
// its output stream: flush ends a response without resetting the context.
type encoder interface {
	encode(dst, p []byte) []byte
	flush(dst []byte) []byte
}

type identityEncoder struct{}

func (identityEncoder) encode(dst, p []byte) []byte { return append(dst, p...) }
func (identityEncoder) flush(dst []byte) []byte     { return dst }

type zlibEncoder struct {
	sink byteSink
	w    *zlib.Writer
}

func newZlibEncoder() *zlibEncoder {
	e := &zlibEncoder{}
	e.w = zlib.NewWriter(&e.sink)
	return e
}

func (e *zlibEncoder) encode(dst, p []byte) []byte {
	e.sink.b = dst
	_, _ = e.w.Write(p) // writes to byteSink cannot fail
	dst, e.sink.b = e.sink.b, nil
	return dst
}

// flush is a sync flush, Z_SYNC_FLUSH as Mercurial does: the peer can decode
// everything so far and the context carries on.
func (e *zlibEncoder) flush(dst []byte) []byte {
	e.sink.b = dst
	_ = e.w.Flush()
	dst, e.sink.b = e.sink.b, nil
	return dst
}

type zstdEncoder struct {
	sink byteSink
	w    *zstd.Encoder
}

func newZstdEncoder() *zstdEncoder {
	e := &zstdEncoder{}
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

func (e *zstdEncoder) encode(dst, p []byte) []byte {
	e.sink.b = dst
	_, _ = e.w.Write(p)
	dst, e.sink.b = e.sink.b, nil
	return dst
}

// flush ends the current block so the peer can decode everything so far,
// like zstd's COMPRESSOBJ_FLUSH_BLOCK.
func (e *zstdEncoder) flush(dst []byte) []byte {
	e.sink.b = dst
	_ = e.w.Flush()
	dst, e.sink.b = e.sink.b, nil
	return dst
}

func newEncoder(name string) encoder {
	switch name {
	case EncodingIdentity:
		return identityEncoder{}
	case EncodingZlib:
		return newZlibEncoder()
	case EncodingZstd8MB:
		return newZstdEncoder()
	}
	return nil
}

// OutputStream is a server stream to the client, made by
// ServerReactor.NewOutputStream. Its content encoding is fixed when it is
// made; stream settings go out with its first response.
type OutputStream struct {
	id           uint8
	begun        bool
	settingsSent bool
	encoding     string
	enc          encoder
	identity     bool // enc is the identity encoder: skip the copy
	scratch      []byte
	pend         []byte // the emitter's coalescing buffer, kept for reuse
}

// ID returns the stream id (even, from 2).
func (s *OutputStream) ID() uint8 { return s.id }

// Encoding returns the stream's content encoding, "" when the client
// advertised none this server supports (responses then go out unencoded).
func (s *OutputStream) Encoding() string { return s.encoding }

// appendFrame appends a frame on s to dst, setting stream-begin on the
// stream's first frame and encoded when asked.
func (s *OutputStream) appendFrame(dst []byte, rid uint16, t frame.Type, fl frame.Flags, payload []byte, encoded bool) []byte {
	var sf frame.StreamFlags
	if !s.begun {
		sf |= frame.StreamBegin
		s.begun = true
	}
	if encoded {
		sf |= frame.StreamEncoded
	}
	if t == frame.TypeStreamSettings && fl&frame.FlagStreamSettingsEOS != 0 {
		s.settingsSent = true
	}
	dst = frame.AppendHeader(dst, frame.Header{Length: len(payload), RequestID: rid, StreamID: s.id,
		StreamFlags: sf, Type: t, Flags: fl})
	return append(dst, payload...)
}

// appendSettings appends the stream-settings frame naming the encoder, once.
func (s *OutputStream) appendSettings(dst []byte, rid uint16) []byte {
	if s.enc == nil || s.settingsSent {
		return dst
	}
	var p [32]byte
	payload := hgcbor.AppendBytes(p[:0], []byte(s.encoding))
	return s.appendFrame(dst, rid, frame.TypeStreamSettings, frame.FlagStreamSettingsEOS, payload, false)
}

// encode returns p run through the stream's encoder, in scratch space valid
// until the next encode.
func (s *OutputStream) encode(p []byte) []byte {
	if s.enc == nil || s.identity {
		return p
	}
	s.scratch = s.enc.encode(s.scratch[:0], p)
	return s.scratch
}

func (s *OutputStream) flush() []byte {
	if s.enc == nil {
		return nil
	}
	s.scratch = s.enc.flush(s.scratch[:0])
	return s.scratch
}

// emitter coalesces response chunks into command-response frames the way
// Mercurial's bufferingcommandresponseemitter does, so frame boundaries
// match Mercurial's byte for byte.
type emitter struct {
	s    *OutputStream
	rid  uint16
	max  int
	pend []byte
	out  []byte
}

func (e *emitter) frame(payload []byte) {
	e.out = e.s.appendFrame(e.out, e.rid, frame.TypeCommandResponse,
		frame.FlagCommandResponseContinuation, payload, e.s.settingsSent)
}

func (e *emitter) send(chunk []byte) {
	data := e.s.encode(chunk)
	if len(data) == 0 {
		return
	}
	if len(data) > e.max {
		e.flushPending()
		for off := 0; off < len(data); {
			n := min(e.max, len(data)-off)
			e.frame(data[off : off+n])
			off += n
		}
		return
	}
	if len(data)+len(e.pend) < e.max {
		e.pend = append(e.pend, data...)
		return
	}
	e.flushPending()
	e.pend = append(e.pend, data...)
}

func (e *emitter) flushPending() {
	if len(e.pend) == 0 {
		return
	}
	e.frame(e.pend)
	e.pend = e.pend[:0]
}

// sendCBOR feeds the encoded CBOR item b to the emitter in the chunks
// Mercurial's streaming encoder yields: every head on its own, and the
// content of each definite-length string on its own.
func (e *emitter) sendCBOR(b []byte) {
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
		e.send(b[i : i+n])
		i += n
		if (major == 2 || major == 3) && ai != 31 {
			e.send(b[i : i+int(arg)])
			i += int(arg)
		}
	}
}

// appendEOS appends the frames ending a response: the encoder's flush,
// split into frames, the last one flagged eos.
func (s *OutputStream) appendEOS(dst []byte, rid uint16, max int) []byte {
	payload := s.flush()
	encoded := len(payload) > 0
	off := 0
	for {
		n := min(max, len(payload)-off)
		chunk := payload[off : off+n]
		off += n
		fl := frame.FlagCommandResponseContinuation
		if off == len(payload) {
			fl = frame.FlagCommandResponseEOS
		}
		dst = s.appendFrame(dst, rid, frame.TypeCommandResponse, fl, chunk, encoded)
		if off == len(payload) {
			return dst
		}
	}
}
