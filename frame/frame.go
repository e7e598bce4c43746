// Package frame defines the frame of Mercurial's unified frame protocol: the
// 8-byte header, frame types and their flags, stream flags, encoding into a
// caller's buffer, and a human-readable syntax for tests and tools.
//
// The header is laid out exactly as Mercurial writes it:
//
//	bytes 0-2  payload length, 24-bit little-endian
//	bytes 3-4  request id, 16-bit little-endian
//	byte  5    stream id
//	byte  6    stream flags (stream-begin, stream-end, encoded)
//	byte  7    frame type (high nibble) and frame flags (low nibble)
//
// Mercurial 6.3's parseheader weighs the third length byte by 16384 instead of
// 65536, so it misreads any payload of 65536 bytes or more. This package reads
// lengths correctly; the builders in package framing never emit such payloads
// unless configured to.
package frame

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// HeaderSize is the size of a frame header in bytes.
const HeaderSize = 8

// MaxPayload is the largest payload length the 24-bit length field can carry.
const MaxPayload = 1<<24 - 1

// DefaultMaxPayload is the largest payload Mercurial puts in one frame when it
// splits output, and the default for this project's builders.
const DefaultMaxPayload = 32768

// MercurialSafePayload is the exclusive upper bound on payload sizes that
// Mercurial 6.3 reads correctly (see the package documentation).
const MercurialSafePayload = 65536

// Type is a frame type, carried in the high nibble of the header's last byte.
type Type uint8

// Frame types of Mercurial 6.3.
const (
	TypeCommandRequest         Type = 0x01
	TypeCommandData            Type = 0x02
	TypeCommandResponse        Type = 0x03
	TypeErrorResponse          Type = 0x05
	TypeTextOutput             Type = 0x06
	TypeProgress               Type = 0x07
	TypeSenderProtocolSettings Type = 0x08
	TypeStreamSettings         Type = 0x09
)

// Flags are the per-type frame flags in the low nibble of the header's last
// byte. Their meaning depends on the frame type.
type Flags uint8

// Flags of command-request frames.
const (
	FlagCommandRequestNew          Flags = 0x01
	FlagCommandRequestContinuation Flags = 0x02
	FlagCommandRequestMoreFrames   Flags = 0x04
	FlagCommandRequestExpectData   Flags = 0x08
)

// Flags of command-data frames.
const (
	FlagCommandDataContinuation Flags = 0x01
	FlagCommandDataEOS          Flags = 0x02
)

// Flags of command-response frames.
const (
	FlagCommandResponseContinuation Flags = 0x01
	FlagCommandResponseEOS          Flags = 0x02
)

// Flags of sender-protocol-settings frames.
const (
	FlagSenderProtocolSettingsContinuation Flags = 0x01
	FlagSenderProtocolSettingsEOS          Flags = 0x02
)

// Flags of stream-settings frames.
const (
	FlagStreamSettingsContinuation Flags = 0x01
	FlagStreamSettingsEOS          Flags = 0x02
)

// StreamFlags describe a frame's place in its stream.
type StreamFlags uint8

// Stream flags.
const (
	StreamFlagBegin   StreamFlags = 0x01
	StreamFlagEnd     StreamFlags = 0x02
	StreamFlagEncoded StreamFlags = 0x04

	streamFlagsMask = StreamFlagBegin | StreamFlagEnd | StreamFlagEncoded
)

type flagName struct {
	name string
	bit  uint8
}

// Names as Mercurial spells them, in bit order.
var (
	typeNames = [16]string{
		TypeCommandRequest:         "command-request",
		TypeCommandData:            "command-data",
		TypeCommandResponse:        "command-response",
		TypeErrorResponse:          "error-response",
		TypeTextOutput:             "text-output",
		TypeProgress:               "progress",
		TypeSenderProtocolSettings: "sender-protocol-settings",
		TypeStreamSettings:         "stream-settings",
	}
	streamFlagNames = []flagName{{"stream-begin", 0x01}, {"stream-end", 0x02}, {"encoded", 0x04}}
	continuationEOS = []flagName{{"continuation", 0x01}, {"eos", 0x02}}
	typeFlagNames   = [16][]flagName{
		TypeCommandRequest:         {{"new", 0x01}, {"continuation", 0x02}, {"more", 0x04}, {"have-data", 0x08}},
		TypeCommandData:            continuationEOS,
		TypeCommandResponse:        continuationEOS,
		TypeSenderProtocolSettings: continuationEOS,
		TypeStreamSettings:         continuationEOS,
	}
)

// Valid reports whether t is a frame type Mercurial 6.3 defines.
func (t Type) Valid() bool { return t < 16 && typeNames[t] != "" }

// String returns Mercurial's name for t, or "<unknown 0xNN>".
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("<unknown 0x%02x>", uint8(t))
}

// TypeByName returns the frame type Mercurial calls name.
func TypeByName(name string) (Type, bool) {
	for t, n := range typeNames {
		if n != "" && n == name {
			return Type(t), true
		}
	}
	return 0, false
}

// ValidFlags returns the flag bits defined for frames of type t.
func (t Type) ValidFlags() Flags {
	var f Flags
	if t < 16 {
		for _, fn := range typeFlagNames[t] {
			f |= Flags(fn.bit)
		}
	}
	return f
}

// FlagByName returns the flag of frame type t that Mercurial calls name.
func (t Type) FlagByName(name string) (Flags, bool) {
	if t < 16 {
		for _, fn := range typeFlagNames[t] {
			if fn.name == name {
				return Flags(fn.bit), true
			}
		}
	}
	return 0, false
}

// FlagsString renders f the way Mercurial's humanflags does for frames of
// type t: names joined by "|", unknown bits as "<unknown 0xNN>", "" for none.
func (t Type) FlagsString(f Flags) string {
	var names []flagName
	if t < 16 {
		names = typeFlagNames[t]
	}
	return humanFlags(names, uint8(f))
}

// StreamFlagByName returns the stream flag Mercurial calls name.
func StreamFlagByName(name string) (StreamFlags, bool) {
	for _, fn := range streamFlagNames {
		if fn.name == name {
			return StreamFlags(fn.bit), true
		}
	}
	return 0, false
}

// String renders f the way Mercurial's humanflags does.
func (f StreamFlags) String() string { return humanFlags(streamFlagNames, uint8(f)) }

func humanFlags(names []flagName, v uint8) string {
	var b strings.Builder
	for bit := uint(0); bit < 8; bit++ {
		m := uint8(1) << bit
		if v&m == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		name := ""
		for _, fn := range names {
			if fn.bit == m {
				name = fn.name
			}
		}
		if name == "" {
			name = fmt.Sprintf("<unknown 0x%02x>", m)
		}
		b.WriteString(name)
	}
	return b.String()
}

// Header is a decoded frame header.
type Header struct {
	Length      int // payload length in bytes
	RequestID   uint16
	StreamID    uint8
	StreamFlags StreamFlags
	Type        Type
	Flags       Flags
}

// HeaderError reports a header field holding a value no frame can have.
type HeaderError struct {
	Field string // "type", "stream flags", "flags" or "length"
	Value uint64
	Type  Type // the frame type, when Field is "flags"
}

// Error names the bad field and its value, and for bad flags the frame type
// they were checked against, e.g. "frame: invalid flags 0x04 for command-data frame".
func (e *HeaderError) Error() string {
	switch e.Field {
	case "flags":
		return fmt.Sprintf("frame: invalid flags 0x%02x for %s frame", e.Value, e.Type)
	case "type":
		return fmt.Sprintf("frame: invalid frame type %d", e.Value)
	default:
		return fmt.Sprintf("frame: invalid %s 0x%02x", e.Field, e.Value)
	}
}

// ParseHeader decodes the header at the start of b, which must hold at least
// HeaderSize bytes. It rejects an undefined frame type, undefined stream-flag
// bits and flag bits undefined for the frame's type with a *HeaderError.
func ParseHeader(b []byte) (Header, error) {
	v := binary.LittleEndian.Uint64(b) // one load, one bounds check
	h := Header{
		Length:      int(v & 0xffffff),
		RequestID:   uint16(v >> 24),
		StreamID:    uint8(v >> 40),
		StreamFlags: StreamFlags(v >> 48),
		Type:        Type(v >> 60),
		Flags:       Flags(v >> 56 & 0x0f),
	}
	if badBits(uint8(v>>48), uint8(v>>56)) != 0 {
		return h, h.invalid()
	}
	return h, nil
}

// invalidFlags[t] holds the flag bits frames of type t may not carry, and
// 0xff for undefined types (so that bit 0x10, never a flag, marks them). A
// table keeps header validation to a load and a test.
var invalidFlags = func() (m [16]uint8) {
	for t := range m {
		m[t] = 0xff
		if Type(t).Valid() {
			m[t] = uint8(^Type(t).ValidFlags()) & 0x0f
		}
	}
	return m
}()

// badBits is non-zero when a header's last two bytes hold an undefined type,
// flags undefined for its type, or undefined stream flags.
func badBits(streamFlags, typeFlags uint8) uint8 {
	return invalidFlags[typeFlags>>4]&(typeFlags&0x0f|0x10) | streamFlags&^uint8(streamFlagsMask)
}

func (h *Header) validate() error {
	if badBits(uint8(h.StreamFlags), uint8(h.Type&0x0f)<<4|uint8(h.Flags&0x0f)) == 0 && h.Type < 16 && h.Flags < 16 {
		return nil
	}
	return h.invalid()
}

// invalid builds the error for a header found wrong.
//
//go:noinline
func (h *Header) invalid() error {
	if !h.Type.Valid() {
		return &HeaderError{Field: "type", Value: uint64(h.Type)}
	}
	if h.StreamFlags&^streamFlagsMask != 0 {
		return &HeaderError{Field: "stream flags", Value: uint64(h.StreamFlags)}
	}
	return &HeaderError{Field: "flags", Value: uint64(h.Flags), Type: h.Type}
}

// AppendHeader appends the 8-byte encoding of h to dst. It does not validate h;
// Length must be within [0, MaxPayload].
func AppendHeader(dst []byte, h Header) []byte {
	return append(dst,
		byte(h.Length), byte(h.Length>>8), byte(h.Length>>16),
		byte(h.RequestID), byte(h.RequestID>>8),
		h.StreamID, byte(h.StreamFlags),
		byte(h.Type)<<4|byte(h.Flags&0x0f))
}

// Frame is one frame of the unified frame protocol.
//
// A Frame produced by a decoder may alias the decoder's buffer; see the
// decoder's documentation for how long Payload stays valid.
type Frame struct {
	RequestID   uint16
	StreamID    uint8
	StreamFlags StreamFlags
	Type        Type
	Flags       Flags
	Payload     []byte
}

// Header returns f's header.
func (f *Frame) Header() Header {
	return Header{Length: len(f.Payload), RequestID: f.RequestID, StreamID: f.StreamID,
		StreamFlags: f.StreamFlags, Type: f.Type, Flags: f.Flags}
}

// Validate reports whether f can be encoded and decoded back: a defined type,
// defined flags and a payload of at most MaxPayload bytes.
func (f *Frame) Validate() error {
	if len(f.Payload) > MaxPayload {
		return &HeaderError{Field: "length", Value: uint64(len(f.Payload))}
	}
	h := f.Header()
	return h.validate()
}

// Append appends the encoded frame (header and payload) to dst and returns
// the extended slice. It does not validate f: a payload longer than
// MaxPayload is truncated in the length field, so callers that take
// untrusted sizes call Validate first.
func (f *Frame) Append(dst []byte) []byte {
	dst = AppendHeader(dst, f.Header())
	return append(dst, f.Payload...)
}

// Size returns the encoded size of f.
func (f *Frame) Size() int { return HeaderSize + len(f.Payload) }

// Clone returns a copy of f whose payload does not alias f's.
func (f Frame) Clone() Frame {
	if f.Payload != nil {
		f.Payload = append(make([]byte, 0, len(f.Payload)), f.Payload...)
	}
	return f
}

// String describes f the way a person reads it, in the manner of Mercurial's
// frame repr:
//
//	frame(size=4; request=1; stream=1; streamflags=stream-begin; type=command-request; flags=new)
func (f Frame) String() string {
	return fmt.Sprintf("frame(size=%d; request=%d; stream=%d; streamflags=%s; type=%s; flags=%s)",
		len(f.Payload), f.RequestID, f.StreamID, f.StreamFlags, f.Type, f.Type.FlagsString(f.Flags))
}
