package framing

import (
	"errors"
	"fmt"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// Encoder is a stream content encoding: Mercurial's encoder for a stream
// encoding profile ("identity", "zlib", "zstd-8mb"). One encoder spans every
// frame an OutputStream sends with the encoded stream flag. Encoders append
// to the caller's dst and do not retain p or dst; they cannot fail, since
// they only write to memory.
type Encoder interface {
	// Name is the profile name the stream-settings frame announces.
	Name() string
	// Encode appends the encoding of p. It may hold bytes back.
	Encode(dst, p []byte) []byte
	// Flush appends whatever the encoder holds back, so that the peer can
	// decode everything encoded so far; the encoding context carries on.
	Flush(dst []byte) []byte
	// Finish appends the end of the encoding; the encoder is not used
	// afterwards.
	Finish(dst []byte) []byte
}

// IdentityEncoder is the "identity" content encoding: data goes out as it
// is. The ResponseEmitter recognises it and skips the copy an encoder makes.
type IdentityEncoder struct{}

// Name returns "identity".
func (IdentityEncoder) Name() string { return "identity" }

// Encode appends p.
func (IdentityEncoder) Encode(dst, p []byte) []byte { return append(dst, p...) }

// Flush appends nothing: nothing is held back.
func (IdentityEncoder) Flush(dst []byte) []byte { return dst }

// Finish appends nothing.
func (IdentityEncoder) Finish(dst []byte) []byte { return dst }

// OutputStreamConfig configures an OutputStream. The zero value sends frames of
// at most frame.DefaultMaxPayload (32768) bytes, as Mercurial does.
type OutputStreamConfig struct {
	// MaxFramePayload is where builders split output into frames. Zero means
	// frame.DefaultMaxPayload. Without AllowLargePayloads it is clamped to
	// frame.MercurialSafePayload-1 (65535); with it, to frame.MaxPayload.
	MaxFramePayload int
	// AllowLargePayloads lets the stream send payloads of 65536 bytes or
	// more, which Mercurial 6.3 misreads (its parseheader weighs the third
	// length byte by 16384). Only for peers known to read lengths correctly.
	AllowLargePayloads bool
}

func (c OutputStreamConfig) limits() (split, hard int) {
	hard = frame.MercurialSafePayload - 1
	if c.AllowLargePayloads {
		hard = frame.MaxPayload
	}
	split = c.MaxFramePayload
	if split <= 0 {
		split = frame.DefaultMaxPayload
	}
	return min(split, hard), hard
}

// ErrNoStreamSettings is returned when a builder would send an encoded frame
// on a stream that has not yet sent its stream-settings frame, which
// Mercurial treats as a programming error: the peer could not decode it.
var ErrNoStreamSettings = errors.New("framing: encoded frame before the stream's settings frame")

// tooLarge reports output that does not fit where it must: a payload over
// the stream's hard limit (65535 bytes unless
// OutputStreamConfig.AllowLargePayloads), a text-output payload over the split
// size (Mercurial sends text output in a single frame), or an error-response
// message over Mercurial's 32768-byte bound. The error holds an
// *action.LimitError whose What names the frame type and what was measured,
// e.g. "text-output payload bytes".
func tooLarge(t frame.Type, what string, size, limit int) error {
	return fmt.Errorf("framing: %w (does not fit in one frame)", &action.LimitError{
		What: t.String() + " " + what + " bytes", Size: int64(size), Limit: int64(limit)})
}

// OutputStream is one stream of frames a peer sends: Mercurial's
// outputstream. It numbers nothing itself — request ids are the caller's —
// but sets stream-begin on its first frame only, tracks whether its
// stream-settings frame went out, and runs its content Encoder.
//
// Builders append whole frames to the caller's dst and return the extended
// slice; they do not retain dst or their arguments. They act when called:
// the stream's state (stream-begin sent, settings sent, encoder context)
// has changed by the time a builder returns. A builder that fails returns
// dst with its original length and leaves the stream as it was, except that
// an Encoder cannot be rewound.
//
// Make one with NewOutputStream. An OutputStream is not safe for concurrent
// use.
type OutputStream struct {
	id           uint8
	split, hard  int
	active       bool
	settingsSent bool
	enc          Encoder
	scratch      []byte // CBOR payloads before they are framed
	encoded      []byte // encoder output before it is framed
}

// NewOutputStream returns a stream with id whose first frame will carry
// stream-begin.
func NewOutputStream(id uint8, cfg OutputStreamConfig) *OutputStream {
	s := &OutputStream{id: id}
	s.split, s.hard = cfg.limits()
	return s
}

// ID returns the stream id.
func (s *OutputStream) ID() uint8 { return s.id }

// MaxFramePayload returns the payload size at which builders split output.
func (s *OutputStream) MaxFramePayload() int { return s.split }

// Active reports whether the stream has sent its first frame.
func (s *OutputStream) Active() bool { return s.active }

// SettingsSent reports whether the stream has sent a stream-settings frame
// with the eos flag, after which it may send encoded frames.
func (s *OutputStream) SettingsSent() bool { return s.settingsSent }

// SetEncoder sets the stream's content encoder (Mercurial's setencoder).
// AppendStreamSettings announces it; data frames built afterwards go through
// it.
func (s *OutputStream) SetEncoder(e Encoder) { s.enc = e }

// Encoder returns the stream's content encoder, or nil.
func (s *OutputStream) Encoder() Encoder { return s.enc }

// Encoding returns the name of the stream's content encoding, "" when it
// has no encoder (data then goes out unencoded).
func (s *OutputStream) Encoding() string {
	if s.enc == nil {
		return ""
	}
	return s.enc.Name()
}

// Encode appends p encoded by the stream's encoder, or p itself when the
// stream has none.
func (s *OutputStream) Encode(dst, p []byte) []byte {
	if s.enc == nil {
		return append(dst, p...)
	}
	return s.enc.Encode(dst, p)
}

// Flush appends what the stream's encoder holds back; nothing without an
// encoder.
func (s *OutputStream) Flush(dst []byte) []byte {
	if s.enc == nil {
		return dst
	}
	return s.enc.Flush(dst)
}

// Finish appends the end of the stream's encoding; nothing without an
// encoder. (Mercurial 6.3's outputstream.finish drops these bytes; we return
// them.)
func (s *OutputStream) Finish(dst []byte) []byte {
	if s.enc == nil {
		return dst
	}
	return s.enc.Finish(dst)
}

// AppendFrame appends one frame on this stream (Mercurial's
// outputstream.makeframe): stream-begin if it is the stream's first frame,
// the encoded flag if encoded is true, which requires that the stream's
// settings were sent (else ErrNoStreamSettings). A stream-settings frame with
// the eos flag marks the settings as sent. A payload over the stream's hard
// limit is an error holding an *action.LimitError.
func (s *OutputStream) AppendFrame(dst []byte, requestID uint16, t frame.Type, flags frame.Flags, payload []byte, encoded bool) ([]byte, error) {
	if len(payload) > s.hard {
		return dst, tooLarge(t, "payload", len(payload), s.hard)
	}
	var sf frame.StreamFlags
	if encoded {
		if !s.settingsSent {
			return dst, ErrNoStreamSettings
		}
		sf |= frame.StreamFlagEncoded
	}
	if !s.active {
		sf |= frame.StreamFlagBegin
		s.active = true
	}
	if t == frame.TypeStreamSettings && flags&frame.FlagStreamSettingsEOS != 0 {
		s.settingsSent = true
	}
	dst = frame.AppendHeader(dst, frame.Header{Length: len(payload), RequestID: requestID,
		StreamID: s.id, StreamFlags: sf, Type: t, Flags: flags})
	return append(dst, payload...), nil
}

// appendSplit appends payload as frames of at most the split size: every
// frame but the last with flags more, the last with last. An empty payload
// is one empty frame.
func (s *OutputStream) appendSplit(dst []byte, requestID uint16, t frame.Type, more, last frame.Flags, payload []byte, encoded bool) ([]byte, error) {
	for {
		n := min(len(payload), s.split)
		flags := more
		if n == len(payload) {
			flags = last
		}
		var err error
		if dst, err = s.AppendFrame(dst, requestID, t, flags, payload[:n], encoded); err != nil {
			return dst, err
		}
		if payload = payload[n:]; len(payload) == 0 {
			return dst, nil
		}
	}
}

// state is what a failed builder restores.
type streamState struct{ active, settingsSent bool }

func (s *OutputStream) save() streamState { return streamState{s.active, s.settingsSent} }

func (s *OutputStream) restore(st streamState) { s.active, s.settingsSent = st.active, st.settingsSent }

// fail undoes a builder's partial work: dst back to n bytes, the stream as
// it was.
func (s *OutputStream) fail(dst []byte, n int, st streamState, err error) ([]byte, error) {
	s.restore(st)
	return dst[:n], err
}

// AppendStreamSettings appends the stream-settings frame announcing the
// stream's encoder (Mercurial's makestreamsettingsframe): the encoder's name
// as a CBOR byte string, with the eos flag. It appends nothing when the
// stream has no encoder or already sent its settings.
func (s *OutputStream) AppendStreamSettings(dst []byte, requestID uint16) ([]byte, error) {
	if s.enc == nil || s.settingsSent {
		return dst, nil
	}
	name := s.enc.Name()
	s.scratch = hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorBytes, uint64(len(name)))
	s.scratch = append(s.scratch, name...)
	return s.AppendFrame(dst, requestID, frame.TypeStreamSettings, frame.FlagStreamSettingsEOS, s.scratch, false)
}

// AppendSenderProtocolSettings appends the sender-protocol-settings frame a
// client sends before its first command to advertise the content encodings
// it accepts, in its order of preference (as Mercurial's clientreactor
// does): payload {b'contentencodings': [names…]}, eos.
func (s *OutputStream) AppendSenderProtocolSettings(dst []byte, requestID uint16, encodings []string) ([]byte, error) {
	p := hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorMap, 1)
	p = hgcbor.AppendHead(appendCBORBytes(p, "contentencodings"), hgcbor.MajorArray, uint64(len(encodings)))
	for _, e := range encodings {
		p = appendCBORBytes(p, e)
	}
	s.scratch = p
	return s.AppendFrame(dst, requestID, frame.TypeSenderProtocolSettings, frame.FlagSenderProtocolSettingsEOS, p, false)
}
