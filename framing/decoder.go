package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
)

// DefaultDecoderMaxPayload is the largest frame payload a Decoder accepts
// when DecoderConfig.MaxPayload is zero: 1 MiB, far above the 32 KiB frames
// Mercurial sends and far below what the 24-bit length field allows.
const DefaultDecoderMaxPayload = 1 << 20

// DecoderConfig configures a Decoder. The zero value is ready to use.
type DecoderConfig struct {
	// MaxPayload is the largest payload, in bytes, a frame may announce.
	// A longer one is an error holding an *action.LimitError, reported as soon as its
	// header is read and before anything is buffered for it. Zero means
	// DefaultDecoderMaxPayload; values above frame.MaxPayload mean
	// frame.MaxPayload.
	MaxPayload int
}

func (c DecoderConfig) maxPayload() int {
	switch {
	case c.MaxPayload <= 0:
		return DefaultDecoderMaxPayload
	case c.MaxPayload > frame.MaxPayload:
		return frame.MaxPayload
	default:
		return c.MaxPayload
	}
}

// payloadLimit reports a frame header announcing a payload over the
// decoder's limit: "framing: progress frame payload bytes: 5 exceeds the
// limit of 4", wrapping an *action.LimitError.
func payloadLimit(h frame.Header, limit int) error {
	return fmt.Errorf("framing: %w", &action.LimitError{What: h.Type.String() + " frame payload bytes",
		Size: int64(h.Length), Limit: int64(limit)})
}

// TruncatedError reports input that ended inside a frame.
type TruncatedError struct {
	// Pending is how many bytes of the unfinished frame had arrived.
	Pending int
	// Want is the full size of that frame (header and payload), or 0 when
	// its header had not arrived completely.
	Want int
}

// Error says whether the input ended inside the header or the payload, and
// how many bytes of the frame had arrived.
func (e *TruncatedError) Error() string {
	if e.Want == 0 {
		return fmt.Sprintf("framing: input ended inside a frame header: %d of %d header bytes pending",
			e.Pending, frame.HeaderSize)
	}
	return fmt.Sprintf("framing: input ended inside a frame: %d of %d bytes pending", e.Pending, e.Want)
}

// Unwrap returns io.ErrUnexpectedEOF, so errors.Is(err, io.ErrUnexpectedEOF)
// holds.
func (e *TruncatedError) Unwrap() error { return io.ErrUnexpectedEOF }

// ErrFeedAfterEOF is the error a Decoder reports when Feed is called after
// FeedEOF.
var ErrFeedAfterEOF = errors.New("framing: bytes fed after end of input")

// Decoder splits a byte stream into frames. It is a sans-IO machine
// (action.Machine[frame.Frame]): Feed it bytes in any split — one byte at a
// time works — then call Next until it returns WantMore or Error; each
// Deliver action carries one frame in Value.
//
// Buffer ownership. The decoder keeps referencing the slice passed to Feed
// until Next returns WantMore or Error; after that the caller may reuse it.
// A frame that lies whole inside one fed slice is delivered without copying:
// its Payload aliases the caller's slice. The bytes of a frame split across
// Feeds are copied into the decoder's own buffer, which keeps its capacity
// for reuse, so a steady stream allocates nothing per frame; as long as the
// caller drains Next before feeding again, it holds at most one frame
// (frame.HeaderSize+MaxPayload bytes). Either way a
// delivered Payload is valid only until the next call to any method of the
// decoder; callers that keep it copy it (frame.Frame.Clone). Payload's
// capacity is cut at its length, so appending to it never writes into the
// stream.
//
// Errors. A header frame.ParseHeader rejects is reported as its
// *frame.HeaderError; a payload over the limit as an error holding an
// *action.LimitError (errors.Is action.ErrLimit); end of input (FeedEOF)
// inside a frame as a *TruncatedError. Once the input ended cleanly and every
// frame was taken, Next returns an Error with io.EOF. After an error the
// decoder is terminal: Next keeps returning the same error and Feed is a
// no-op.
//
// The zero Decoder is ready to use with the default configuration. A
// Decoder is not safe for concurrent use.
type Decoder struct {
	cfg DecoderConfig
	// under is DefaultDecoderMaxPayload minus the resolved limit
	// (cfg.maxPayload()), so that it is 0 in the zero Decoder and the fast
	// path checks a length with one add and compare.
	under int

	in  []byte // the caller's last Feed (aliased); in[pos:] is unread
	pos int    // advanced as frames are taken: no pointer is written per frame
	buf []byte // the partial frame, copied; buf[off:] is unread
	off int

	eof  bool
	err  error
	halt bool // eof || err != nil: Next's WantMore check in one load

	cur frame.Frame // the frame NextFrame returns a pointer to
}

// NewDecoder returns a Decoder configured by cfg.
func NewDecoder(cfg DecoderConfig) *Decoder {
	return &Decoder{cfg: cfg, under: DefaultDecoderMaxPayload - cfg.maxPayload()}
}

// Reset makes d ready for a new stream decoded under cfg, keeping the
// capacity of its buffer; it also configures a Decoder embedded by value.
// Payloads delivered before are invalid afterwards.
func (d *Decoder) Reset(cfg DecoderConfig) {
	*d = Decoder{cfg: cfg, under: DefaultDecoderMaxPayload - cfg.maxPayload(), buf: d.buf[:0]}
}

// Feed queues p for decoding. The decoder references p until Next returns
// WantMore or Error; it copies only the bytes of a frame that p does not hold
// completely. Feeding again before Next has returned WantMore is allowed but
// copies the unread bytes of the earlier Feed. Feed after an error is a
// no-op; Feed after FeedEOF is an error.
func (d *Decoder) Feed(p []byte) {
	if d.err != nil || len(p) == 0 {
		return
	}
	if d.eof {
		d.err = ErrFeedAfterEOF
		return
	}
	if d.pos < len(d.in) {
		// The caller fed again without draining: keep the earlier bytes
		// before p, in our own memory, since we stop referencing them.
		d.compact()
		d.buf = append(d.buf, d.in[d.pos:]...)
	}
	d.in, d.pos = p, 0
}

// FeedEOF tells the decoder no more bytes will come. Next then reports a
// *TruncatedError if the input ended inside a frame, and an Error with
// io.EOF once every complete frame was taken. (NextFrame keeps answering
// false and nil then, leaving the end to its caller.)
func (d *Decoder) FeedEOF() { d.eof, d.halt = true, true }

// Next returns the next action: Deliver with the next frame, WantMore when
// the input fed so far holds no further complete frame, or Error. See the
// Decoder documentation for how long a delivered Payload is valid.
func (d *Decoder) Next() (a action.Action[frame.Frame]) {
	if d.pos == len(d.in) && d.off == len(d.buf) && !d.halt {
		return a // WantMore: nothing fed is left and nothing is buffered
	}
	// The fast path, for a frame that lies whole in the fed bytes: written
	// straight into the result, as building it elsewhere and copying it in
	// costs more than the decoding. The header is read in one load.
	// NextFrame repeats it: through a shared function, both paths cost
	// about 1 ns more (BenchmarkDecode, BenchmarkDecodeFrame).
	if in := d.in[d.pos:]; d.off == len(d.buf) && len(in) >= frame.HeaderSize && d.err == nil {
		h := binary.LittleEndian.Uint64(in)
		length := int(h & 0xffffff)
		if end := frame.HeaderSize + length; end <= len(in) {
			if acceptedTypeFlags[byte(h>>56)] && byte(h>>48)&^acceptedStreamFlags == 0 &&
				length+d.under <= DefaultDecoderMaxPayload {
				d.pos += end
				a.Kind = action.KindDeliver
				a.Value.RequestID = uint16(h >> 24)
				a.Value.StreamID = uint8(h >> 40)
				a.Value.StreamFlags = frame.StreamFlags(h >> 48)
				a.Value.Type = frame.Type(h >> 60)
				a.Value.Flags = frame.Flags(h >> 56 & 0x0f)
				a.Value.Payload = in[frame.HeaderSize:end:end]
				return a
			}
		}
	}
	ok, err := d.next(&a.Value)
	switch {
	case ok:
		a.Kind = action.KindDeliver
	case err != nil:
		a.Kind, a.Err = action.KindError, err
	case d.eof:
		d.err = io.EOF // a clean end: terminal, like any error
		a.Kind, a.Err = action.KindError, io.EOF
	}
	return a
}

// NextFrame is Next without the action wrapping, for callers that decode
// frames rather than drive a machine: it returns the next frame, or nil and
// nil when more input is needed, or nil and the decoder's error. The frame
// lives in the decoder and, like its Payload, is valid only until the next
// call to any method of the decoder (the pattern of http2.Framer.ReadFrame
// with SetReuseFrames). Returning a pointer rather than a Frame value keeps
// the result in registers: copying a freshly written struct out of the
// result area costs more than the decoding. After a clean FeedEOF it keeps
// answering nil and nil, leaving the end to its caller.
func (d *Decoder) NextFrame() (*frame.Frame, error) {
	if d.pos == len(d.in) && d.off == len(d.buf) {
		return nil, d.err // nothing fed is left and nothing is buffered
	}
	// Next's fast path, into the decoder's frame.
	if in := d.in[d.pos:]; d.off == len(d.buf) && len(in) >= frame.HeaderSize && d.err == nil {
		h := binary.LittleEndian.Uint64(in)
		length := int(h & 0xffffff)
		if end := frame.HeaderSize + length; end <= len(in) &&
			acceptedTypeFlags[byte(h>>56)] && byte(h>>48)&^acceptedStreamFlags == 0 &&
			length+d.under <= DefaultDecoderMaxPayload {
			d.pos += end
			f := &d.cur
			f.RequestID = uint16(h >> 24)
			f.StreamID = uint8(h >> 40)
			f.StreamFlags = frame.StreamFlags(h >> 48)
			f.Type = frame.Type(h >> 60)
			f.Flags = frame.Flags(h >> 56 & 0x0f)
			f.Payload = in[frame.HeaderSize:end:end]
			return f, nil
		}
	}
	if ok, err := d.next(&d.cur); !ok {
		return nil, err
	}
	return &d.cur, nil
}

// next decodes the next frame into *f and reports whether there was one.
func (d *Decoder) next(f *frame.Frame) (bool, error) {
	if d.err != nil {
		return false, d.err
	}
	if d.off == len(d.buf) && d.pos == len(d.in) {
		return false, nil // drained: nothing partial to report at EOF either
	}
	// Next and NextFrame tried the fast path already: what comes here is
	// partial, buffered or to be rejected.
	return d.slowNext(f)
}

// acceptedTypeFlags[b] reports whether frame.ParseHeader accepts a header
// whose last byte is b (type in the high nibble, flags in the low): a table,
// so the fast path validates a header with one load and leaves building the
// error to frame.ParseHeader.
var acceptedTypeFlags = func() (t [256]bool) {
	for b := range t {
		typ, f := frame.Type(b>>4), frame.Flags(b&0x0f)
		t[b] = typ.Valid() && f&^typ.ValidFlags() == 0
	}
	return t
}()

const acceptedStreamFlags = byte(frame.StreamFlagBegin | frame.StreamFlagEnd | frame.StreamFlagEncoded)

// slowNext assembles a frame in d.buf from what is buffered and what the
// caller fed.
func (d *Decoder) slowNext(f *frame.Frame) (bool, error) {
	d.compact()
	if len(d.buf) < frame.HeaderSize && !d.take(frame.HeaderSize-len(d.buf)) {
		return d.wantMore()
	}
	h, err := frame.ParseHeader(d.buf)
	if err != nil {
		return d.fail(err)
	}
	if h.Length > d.limit() {
		return d.fail(payloadLimit(h, d.limit()))
	}
	end := frame.HeaderSize + h.Length
	if len(d.buf) < end && !d.take(end-len(d.buf)) {
		return d.wantMore()
	}
	// The frame is complete. Its bytes stay where they are until the next
	// call compacts the buffer.
	d.off = end
	*f = frame.Frame{RequestID: h.RequestID, StreamID: h.StreamID, StreamFlags: h.StreamFlags,
		Type: h.Type, Flags: h.Flags, Payload: d.buf[frame.HeaderSize:end:end]}
	return true, nil
}

// take moves up to n bytes from the caller's input into the buffer and
// reports whether it moved all n.
func (d *Decoder) take(n int) bool {
	m := min(n, len(d.in)-d.pos)
	d.buf = append(d.buf, d.in[d.pos:d.pos+m]...)
	d.pos += m
	return m == n
}

// compact drops the delivered frame at the front of the buffer. It runs at
// the start of a call, once the delivered payload is no longer valid.
func (d *Decoder) compact() {
	if d.off == 0 {
		return
	}
	n := copy(d.buf, d.buf[d.off:])
	d.buf = d.buf[:n]
	d.off = 0
}

func (d *Decoder) wantMore() (bool, error) {
	if d.eof && len(d.buf) > 0 {
		want := 0
		if len(d.buf) >= frame.HeaderSize {
			h, _ := frame.ParseHeader(d.buf) // validated when it was buffered
			want = frame.HeaderSize + h.Length
		}
		return d.fail(&TruncatedError{Pending: len(d.buf), Want: want})
	}
	return false, nil
}

func (d *Decoder) fail(err error) (bool, error) {
	d.err, d.halt = err, true
	d.in, d.pos = nil, 0
	return false, err
}

func (d *Decoder) limit() int {
	return DefaultDecoderMaxPayload - d.under
}

// Buffered returns how many bytes the decoder holds that are not yet part of
// a delivered frame: copied bytes of a partial frame plus unread fed bytes.
func (d *Decoder) Buffered() int { return len(d.buf) - d.off + len(d.in) - d.pos }

// Err returns the error that made the decoder terminal, or nil.
func (d *Decoder) Err() error { return d.err }

var _ action.Machine[frame.Frame] = (*Decoder)(nil)
