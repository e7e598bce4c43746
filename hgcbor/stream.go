package hgcbor

import (
	"fmt"
	"math"

	"github.com/wirereactor/wirereactor/action"
)

// DefaultMaxBuffered is how many undecoded bytes a Decoder holds when no
// other limit is configured.
const DefaultMaxBuffered = 16 << 20

// Decoder decodes a stream of CBOR items pushed into it in pieces of any
// size, like cborutil's bufferingdecoder: Feed queues bytes, Next returns
// the next complete item or reports that it needs more input.
//
// The zero Decoder is ready to use with the default limits. A Decoder does
// no I/O and starts no goroutines; it is not safe for concurrent use.
//
// After Next returns an error the Decoder is terminal: every later call
// returns the same error, until Reset.
type Decoder struct {
	// MaxBuffered bounds the undecoded bytes held at once, including an
	// item still being received. 0 means DefaultMaxBuffered.
	MaxBuffered int
	// MaxDepth bounds how deeply collections nest. 0 means DefaultMaxDepth.
	MaxDepth int
	// MaxItems bounds the items decoded for one top-level item. 0 means no
	// bound beyond the item's length.
	MaxItems int
	// MaxDecodedBytes bounds the decoded size of one top-level item (see
	// DecodeOptions). 0 means DefaultDecodedSize of the item's length.
	MaxDecodedBytes int64

	buf      []byte
	start    int   // offset in buf of the first undecoded byte
	consumed int64 // bytes decoded before buf[start], for error offsets
	scan     scanner
	err      error
}

// Feed queues p for decoding. The Decoder copies p; the caller may reuse it
// as soon as Feed returns. Feeding more than MaxBuffered undecoded bytes
// makes the Decoder fail with an *action.LimitError, so drain Next between
// feeds.
func (d *Decoder) Feed(p []byte) {
	if d.err != nil || len(p) == 0 {
		return
	}
	pending := len(d.buf) - d.start
	if pending+len(p) > d.maxBuffered() {
		d.err = &DecodeError{Offset: int(d.consumed) + pending, Err: &action.LimitError{
			What: "buffered bytes", Size: int64(pending + len(p)), Limit: int64(d.maxBuffered())}}
		return
	}
	if d.start > 0 && (pending == 0 || len(d.buf)+len(p) > cap(d.buf)) {
		n := copy(d.buf, d.buf[d.start:])
		d.buf = d.buf[:n]
		d.scan.shift(d.start)
		d.start = 0
	}
	d.buf = append(d.buf, p...)
}

// Next returns the next complete item. ok is false when more input is
// needed (err nil) or the stream is broken (err non-nil). Returned values do
// not alias the Decoder's buffer.
func (d *Decoder) Next() (v any, ok bool, err error) {
	if d.err != nil {
		return nil, false, d.err
	}
	if d.start == len(d.buf) {
		return nil, false, nil
	}
	end, err := d.scan.run(d.buf, d.start, d.maxDepth(), d.maxBuffered())
	if err != nil {
		if de, isDE := err.(*DecodeError); isDE {
			de.Offset += int(d.consumed) - d.start
		}
		d.err = err
		return nil, false, err
	}
	if end < 0 {
		return nil, false, nil
	}
	dec := DecodeOptions{MaxDepth: d.maxDepth(), MaxItems: d.MaxItems, MaxDecodedBytes: d.MaxDecodedBytes}.decoder(d.buf[d.start:end])
	dec.base = int(d.consumed)
	v, err = dec.item(0, false)
	if err != nil {
		d.err = err
		return nil, false, err
	}
	d.consumed += int64(end - d.start)
	d.start = end
	d.scan.reset(end)
	if d.start == len(d.buf) {
		d.buf, d.start = d.buf[:0], 0
		d.scan.reset(0)
	}
	return v, true, nil
}

// Buffered returns how many bytes are queued but not yet decoded.
func (d *Decoder) Buffered() int { return len(d.buf) - d.start }

// InProgress reports whether undecoded bytes are buffered: an item partly
// received, or items Next has not returned yet. At the end of a stream it
// means the input stopped inside an item.
func (d *Decoder) InProgress() bool { return d.Buffered() > 0 }

// Reset discards buffered input and any error, keeping the limits and the
// buffer's memory.
func (d *Decoder) Reset() {
	d.buf, d.start, d.consumed, d.err = d.buf[:0], 0, 0, nil
	d.scan.reset(0)
}

func (d *Decoder) maxBuffered() int {
	if d.MaxBuffered > 0 {
		return d.MaxBuffered
	}
	return DefaultMaxBuffered
}

func (d *Decoder) maxDepth() int {
	if d.MaxDepth > 0 {
		return d.MaxDepth
	}
	return DefaultMaxDepth
}

// scanner finds where an item ends without decoding it, resuming where it
// stopped when more input arrives, so that feeding an item byte by byte
// costs linear time.
type scanner struct {
	pos   int           // offset in the buffer of the next head to read
	want  int           // buffer length needed before scanning can progress
	stack []scanPending // open items, innermost last
	depth int           // open arrays and maps, counted like the decoder does
}

type scanPending struct {
	remaining uint64 // items still expected; for indefinite items unused
	indef     bool
	strMajor  byte // for indefinite strings: the major type of the chunks; else 0xff
	nests     bool // an array or map, counted against the depth limit
}

func (s *scanner) reset(pos int) {
	s.pos, s.want, s.stack, s.depth = pos, 0, s.stack[:0], 0
}

func (s *scanner) shift(by int) {
	s.pos -= by
	if s.want > 0 {
		s.want -= by
	}
}

// run scans buf from s.pos. It returns the end offset of the item that
// starts at start once complete, or -1 if more input is needed.
func (s *scanner) run(buf []byte, start, maxDepth, maxBuffered int) (int, error) {
	if s.pos < start {
		s.reset(start)
	}
	if len(buf) < s.want {
		return -1, nil
	}
	for {
		p := s.pos
		if p >= len(buf) {
			s.want = p + 1
			return -1, nil
		}
		ib := buf[p]
		major, ai := ib>>5, ib&0x1f
		var n int
		switch {
		case ai < 24 || ai == indefinite:
		case ai <= 27:
			n = 1 << (ai - 24)
		default:
			return 0, &DecodeError{Offset: p, Err: ErrMalformed,
				Detail: fmt.Sprintf("reserved additional information %d in initial byte 0x%02x", ai, ib)}
		}
		if len(buf)-p-1 < n {
			s.want = p + 1 + n
			return -1, nil
		}
		arg := uint64(ai)
		if n > 0 {
			arg = 0
			for _, b := range buf[p+1 : p+1+n] {
				arg = arg<<8 | uint64(b)
			}
		}
		next := p + 1 + n

		// Inside an indefinite-length string only definite chunks of the
		// same major type, or the break, may appear.
		if k := len(s.stack); k > 0 && s.stack[k-1].strMajor != 0xff && ib != breakByte {
			if major != s.stack[k-1].strMajor || ai == indefinite {
				return 0, &DecodeError{Offset: p, Err: ErrMalformed,
					Detail: fmt.Sprintf("chunk with initial byte 0x%02x in indefinite-length string", ib)}
			}
		}

		complete := false // whether an item ended at next
		switch major {
		case majorUint, majorNegint:
			complete = true
		case majorBytes, majorText:
			if ai == indefinite {
				if err := s.push(p, maxDepth, scanPending{indef: true, strMajor: major}); err != nil {
					return 0, err
				}
				break
			}
			if arg > uint64(maxBuffered) {
				return 0, &DecodeError{Offset: p, Err: &action.LimitError{
					What: "string bytes", Size: sizeOf(arg), Limit: int64(maxBuffered)}}
			}
			if uint64(len(buf)-next) < arg {
				s.want = next + int(arg)
				return -1, nil
			}
			next += int(arg)
			complete = true
		case majorArray, majorMap:
			if ai == indefinite {
				if err := s.push(p, maxDepth, scanPending{indef: true, strMajor: 0xff, nests: true}); err != nil {
					return 0, err
				}
				break
			}
			if arg > uint64(maxBuffered) {
				return 0, &DecodeError{Offset: p, Err: &action.LimitError{
					What: "collection items (a buffered byte each at least)", Size: sizeOf(arg), Limit: int64(maxBuffered)}}
			}
			if major == majorMap {
				arg *= 2
			}
			if arg == 0 {
				complete = true
				break
			}
			if err := s.push(p, maxDepth, scanPending{remaining: arg, strMajor: 0xff, nests: true}); err != nil {
				return 0, err
			}
		case majorTag:
			if ai == indefinite {
				return 0, &DecodeError{Offset: p, Err: ErrMalformed, Detail: "indefinite-length semantic tag"}
			}
			if err := s.push(p, maxDepth, scanPending{remaining: 1, strMajor: 0xff}); err != nil {
				return 0, err
			}
		default: // majorSpecial
			if ai == indefinite {
				k := len(s.stack)
				if k == 0 || !s.stack[k-1].indef {
					return 0, &DecodeError{Offset: p, Err: ErrMalformed, Detail: "unexpected break"}
				}
				s.pop()
			}
			complete = true
		}
		s.pos = next
		if complete {
			// Count the finished item against the enclosing collections.
			for {
				k := len(s.stack)
				if k == 0 {
					s.want = 0
					return next, nil
				}
				top := &s.stack[k-1]
				if top.indef {
					break
				}
				top.remaining--
				if top.remaining > 0 {
					break
				}
				s.pop()
			}
		}
	}
}

func (s *scanner) push(at, maxDepth int, p scanPending) error {
	if p.nests {
		if s.depth >= maxDepth {
			return &DecodeError{Offset: at, Err: depthLimit(s.depth+1, maxDepth)}
		}
		s.depth++
	} else if len(s.stack) > 2*maxDepth {
		// Tags and indefinite strings do not nest on their own; a long
		// chain of them is garbage the decoder would reject anyway.
		return &DecodeError{Offset: at, Err: &action.LimitError{
			What: "tags and indefinite strings in a chain", Size: int64(len(s.stack) + 1), Limit: int64(2*maxDepth + 1)}}
	}
	s.stack = append(s.stack, p)
	return nil
}

func (s *scanner) pop() {
	if s.stack[len(s.stack)-1].nests {
		s.depth--
	}
	s.stack = s.stack[:len(s.stack)-1]
}

// sizeOf is a declared length as a LimitError size (saturating).
func sizeOf(arg uint64) int64 { return int64(min(arg, math.MaxInt64)) }

// depthLimit reports collections nested deeper than the limit.
func depthLimit(depth, limit int) error {
	return &action.LimitError{What: "nesting depth", Size: int64(depth), Limit: int64(limit)}
}
