package jsonstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/wirereactor/wirereactor/action"
)

// DefaultMaxMessageSize is the message size limit of a Decoder whose
// configuration leaves it zero: 10 MiB, fifty times QEMU 7.2's largest reply
// (query-qmp-schema, 207 KB).
const DefaultMaxMessageSize = 10 << 20

// DefaultMaxDepth is the nesting limit of a Decoder whose configuration
// leaves it zero. QEMU's own parser stops at 1024 as well.
const DefaultMaxDepth = 1024

// Config configures a Decoder. The zero value is useful: every zero
// field takes its default.
type Config struct {
	// MaxMessageSize bounds one message, from its first to its last byte
	// (whitespace around messages is not counted). Zero means
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// MaxDepth bounds the nesting of arrays and objects. Zero means
	// DefaultMaxDepth.
	MaxDepth int
}

// ErrSyntax is matched by errors.Is for every *SyntaxError.
var ErrSyntax = errors.New("json syntax error")

// SyntaxError reports input that is not a JSON value. It is recoverable:
// see Decoder for how the decoder resynchronises.
type SyntaxError struct {
	// Offset is the stream offset (bytes fed since the decoder was made) of
	// the offending byte, or of the end of input for a truncated message.
	Offset int64
	// Msg says what was wrong, e.g. "invalid character 'g' looking for a value".
	Msg string
	// Truncated is set when the stream ended inside a value; the error then
	// also matches io.ErrUnexpectedEOF.
	Truncated bool
	// DepthExceeded is set when arrays and objects nested deeper than the
	// configured limit.
	DepthExceeded bool

	limit error // for DepthExceeded, the *action.LimitError
}

// Error gives the stream offset and what the decoder found there.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("jsonstream: json syntax error at offset %d: %s", e.Offset, e.Msg)
}

// Is reports whether target is ErrSyntax, or io.ErrUnexpectedEOF for a
// truncated stream.
func (e *SyntaxError) Is(target error) bool {
	return target == ErrSyntax || e.Truncated && target == io.ErrUnexpectedEOF
}

// Unwrap returns, for nesting over the limit, the *action.LimitError (so
// errors.Is(err, action.ErrLimit) holds), else nil.
func (e *SyntaxError) Unwrap() error { return e.limit }

// Decoder splits a byte stream into top-level JSON values, the way QEMU
// reads QMP: a stream, not lines. Values may be split across Feed calls at any
// byte, sent back to back without separators, pretty-printed over many lines,
// or separated by any JSON whitespace (so "\r\n" endings are just whitespace).
// Every value is fully validated (strings, escapes, numbers, literals,
// bracket matching) except for UTF-8 well-formedness inside strings, which is
// left to whoever decodes the value (encoding/json replaces bad bytes).
//
// Use it with the machine rule of package action: Feed, then call Next until
// it returns (nil, nil), meaning "need more input". Next returns one complete
// value per call, without surrounding whitespace. It does not allocate per
// message in steady state: a value lying wholly inside the fed slice is
// returned as a sub-slice of it (zero copy); a value split across feeds is
// gathered in an internal buffer that is reused.
//
// Ownership: Feed keeps referencing p until Next returns (nil, nil) or a
// terminal error (a recoverable syntax error leaves the rest of p to scan);
// only then may the caller reuse p. A value returned by Next aliases
// either p or the decoder's buffer and is valid only until the next call to
// any method of the decoder: copy it to keep it.
//
// Errors and recovery. A *SyntaxError (errors.Is ErrSyntax) is
// reported once, by Next, at the offending byte. The partial value is
// discarded, the decoder skips input up to the next '{' (where a QMP message
// can begin) and carries on; the offending byte itself is kept when it is a
// '{', so `{"execute": {"execute":"cont"}` still yields the second object.
// This mirrors QEMU, which answers garbage with one id-less GenericError and
// resumes at the next object. A message over MaxMessageSize is an error holding an
// *action.LimitError (What "json message bytes"), and it is terminal: the decoder
// stops, because skipping an unbounded value would let a peer keep it busy
// forever; every later Next returns the same error. After FeedEOF, Next
// returns io.EOF once the complete values are drained, or a *SyntaxError
// that also matches io.ErrUnexpectedEOF when the stream ended inside a value;
// both are terminal.
//
// The zero Decoder is ready to use with the default limits.
type Decoder struct {
	maxSize  int
	maxDepth int

	in     []byte // the slice fed last, scanned up to pos
	pos    int
	start  int    // where the current value begins in in (0 when it began in an earlier feed)
	buf    []byte // the current value's bytes from earlier feeds
	bufOut bool   // buf was returned by the last Next; clear it on the next call
	off    int64  // stream offset of in[0]

	state   scanState
	stack   []byte // open containers, '{' or '['
	strKey  bool   // the string being scanned is an object key
	hexLeft uint8  // hex digits left in a \u escape
	lit     string // the literal being matched (true, false, null)
	litPos  uint8  // bytes of lit matched so far

	skipping bool // after a syntax error: discard input up to the next '{'
	eof      bool
	err      error // terminal error
}

type scanState uint8

const (
	stTop          scanState = iota // between values
	stValue                         // expecting a value (after ':', or ',' in an array)
	stValueOrClose                  // after '['
	stKeyOrClose                    // after '{'
	stKey                           // after ',' in an object
	stColon                         // after a key
	stCommaOrClose                  // after a value inside a container
	stString                        // inside a string
	stStringEsc                     // after '\' in a string
	stStringHex                     // inside \uXXXX
	stLiteral                       // inside true, false or null
	stNumMinus                      // after '-'
	stNumZero                       // after a leading '0'
	stNumInt                        // in integer digits
	stNumDot                        // after '.'
	stNumFrac                       // in fraction digits
	stNumE                          // after 'e' or 'E'
	stNumESign                      // after the exponent's sign
	stNumExp                        // in exponent digits
)

// NewDecoder returns a decoder configured by cfg.
func NewDecoder(cfg Config) *Decoder {
	d := &Decoder{}
	d.Reset(cfg)
	return d
}

// Reset makes d a fresh decoder configured by cfg, at stream offset 0,
// keeping its buffers for reuse. It drops any reference to fed input.
func (d *Decoder) Reset(cfg Config) {
	*d = Decoder{buf: d.buf[:0], stack: d.stack[:0],
		maxSize: cfg.MaxMessageSize, maxDepth: cfg.MaxDepth}
	if d.maxSize <= 0 {
		d.maxSize = DefaultMaxMessageSize
	}
	if d.maxDepth <= 0 {
		d.maxDepth = DefaultMaxDepth
	}
}

func (d *Decoder) init() {
	if d.maxSize == 0 {
		d.Reset(Config{})
	}
}

// Limit returns the configured maximum message size.
func (d *Decoder) Limit() int { d.init(); return d.maxSize }

// Feed hands the decoder the next bytes of the stream. The decoder keeps
// referencing p (it does not copy it) until Next returns (nil, nil) or a
// terminal error. Feeding again before that is allowed but costs a copy of the
// unscanned rest. Feeding after FeedEOF or a terminal error is a no-op.
func (d *Decoder) Feed(p []byte) {
	d.init()
	if d.err != nil || d.eof || len(p) == 0 {
		return
	}
	if d.bufOut {
		d.buf, d.bufOut = d.buf[:0], false
	}
	d.keepPartial()
	if d.pos < len(d.in) {
		// Fed before draining: join the unscanned rest and p in a new slice
		// (never reusing memory that in may share with the caller).
		rest := d.in[d.pos:]
		joined := make([]byte, 0, len(rest)+len(p))
		joined = append(append(joined, rest...), p...)
		d.off += int64(d.pos)
		d.in, d.pos, d.start = joined, 0, 0
		return
	}
	d.off += int64(len(d.in))
	d.in, d.pos, d.start = p, 0, 0
}

// keepPartial copies the scanned part of an incomplete value out of in.
func (d *Decoder) keepPartial() {
	if d.state != stTop && d.pos > d.start {
		d.buf = append(d.buf, d.in[d.start:d.pos]...)
	}
	d.start = d.pos
}

// FeedEOF tells the decoder the stream has ended.
func (d *Decoder) FeedEOF() { d.init(); d.eof = true }

// Buffered returns how many bytes of an incomplete value the decoder holds in
// its own buffer (not counting bytes still in the fed slice).
func (d *Decoder) Buffered() int {
	if d.bufOut {
		return 0
	}
	return len(d.buf)
}

// Next returns the next complete value; (nil, nil) when it needs more input;
// or an error (see the type's documentation for which errors are terminal).
func (d *Decoder) Next() ([]byte, error) {
	d.init()
	if d.err != nil {
		return nil, d.err
	}
	if d.bufOut {
		d.buf, d.bufOut = d.buf[:0], false
	}
	for {
		if d.skipping {
			i := bytes.IndexByte(d.in[d.pos:], '{')
			if i < 0 {
				d.pos = len(d.in)
				return d.needMore()
			}
			d.pos += i
			d.skipping = false
		}
		if d.state == stTop {
			for d.pos < len(d.in) && isJSONSpace(d.in[d.pos]) {
				d.pos++
			}
			if d.pos == len(d.in) {
				return d.needMore()
			}
			d.start = d.pos
		}
		budget := d.maxSize - len(d.buf) - (d.pos - d.start)
		end := len(d.in)
		if end-d.pos > budget+1 {
			end = d.pos + budget + 1
		}
		done, serr := d.scan(end)
		if serr != nil {
			return nil, serr
		}
		size := len(d.buf) + d.pos - d.start
		if size > d.maxSize {
			// Size is what was seen so far: always Limit+1.
			d.err = fmt.Errorf("jsonstream: %w", &action.LimitError{What: "json message bytes", Size: int64(size), Limit: int64(d.maxSize)})
			d.in = nil
			return nil, d.err
		}
		if done {
			return d.complete(), nil
		}
		if d.pos == len(d.in) {
			return d.needMore()
		}
	}
}

// complete returns the value that just ended at pos.
func (d *Decoder) complete() []byte {
	d.state = stTop
	if len(d.buf) == 0 {
		return d.in[d.start:d.pos:d.pos]
	}
	d.buf = append(d.buf, d.in[d.start:d.pos]...)
	d.bufOut = true
	return d.buf
}

func (d *Decoder) needMore() ([]byte, error) {
	if !d.eof {
		d.keepPartial()
		d.off += int64(len(d.in))
		d.in, d.pos, d.start = nil, 0, 0
		return nil, nil
	}
	if len(d.stack) == 0 {
		switch d.state {
		case stNumZero, stNumInt, stNumFrac, stNumExp: // a top-level number ends at end of input
			return d.complete(), nil
		case stTop:
			d.err = io.EOF
			return nil, d.err
		}
	}
	d.err = &SyntaxError{Offset: d.off + int64(len(d.in)), Msg: "unexpected end of input inside a value", Truncated: true}
	d.in = nil
	return nil, d.err
}

// fail reports a syntax error at in[i] and arranges resynchronisation.
func (d *Decoder) fail(i int, msg string, keepBrace bool) error {
	err := &SyntaxError{Offset: d.off + int64(i), Msg: msg, DepthExceeded: !keepBrace}
	if err.DepthExceeded {
		err.limit = &action.LimitError{What: "json nesting depth", Size: int64(len(d.stack) + 1), Limit: int64(d.maxDepth)}
	}
	d.buf = d.buf[:0]
	d.stack = d.stack[:0]
	d.state = stTop
	d.skipping = true
	d.pos = i + 1
	if keepBrace && d.in[i] == '{' {
		d.pos = i
	}
	d.start = d.pos
	return err
}

func (d *Decoder) unexpected(i int, looking string) error {
	return d.fail(i, "invalid character "+quoteByte(d.in[i])+" "+looking, true)
}

// scan advances pos over in[:end] and reports whether the current value ended
// (pos is then just past it).
func (d *Decoder) scan(end int) (done bool, err error) {
	in := d.in[:end]
	i := d.pos
	for i < len(in) {
		c := in[i]
		switch d.state {
		case stString:
			// Fast path: run to the next quote, backslash or control byte.
			for i < len(in) {
				c = in[i]
				if c == '"' || c == '\\' || c < 0x20 {
					break
				}
				i++
			}
			if i == len(in) {
				continue
			}
			switch {
			case c == '"':
				i++
				if d.strKey {
					d.state = stColon
					continue
				}
				if d.endValue() {
					d.pos = i
					return true, nil
				}
			case c == '\\':
				d.state = stStringEsc
				i++
			default:
				return false, d.fail(i, "control character "+quoteByte(c)+" in string", true)
			}
			continue
		case stStringEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.state = stString
			case 'u':
				d.state, d.hexLeft = stStringHex, 4
			default:
				return false, d.fail(i, "invalid escape "+quoteByte(c)+" in string", true)
			}
			i++
			continue
		case stStringHex:
			if !isHex(c) {
				return false, d.fail(i, "invalid character "+quoteByte(c)+" in \\u escape", true)
			}
			d.hexLeft--
			if d.hexLeft == 0 {
				d.state = stString
			}
			i++
			continue
		case stLiteral:
			if c != d.lit[d.litPos] {
				return false, d.fail(i, "invalid character "+quoteByte(c)+" in literal "+d.lit, true)
			}
			i++
			d.litPos++
			if int(d.litPos) == len(d.lit) {
				if d.endValue() {
					d.pos = i
					return true, nil
				}
			}
			continue
		case stNumMinus:
			switch {
			case c == '0':
				d.state = stNumZero
			case '1' <= c && c <= '9':
				d.state = stNumInt
			default:
				return false, d.fail(i, "invalid character "+quoteByte(c)+" after '-' in number", true)
			}
			i++
			continue
		case stNumZero, stNumInt, stNumFrac, stNumExp:
			// Digits continue the number, except after a leading zero.
			if d.state != stNumZero {
				for i < len(in) && isDigit(in[i]) {
					i++
				}
				if i == len(in) {
					continue
				}
				c = in[i]
			}
			switch {
			case c == '.' && (d.state == stNumZero || d.state == stNumInt):
				d.state = stNumDot
			case (c == 'e' || c == 'E') && d.state != stNumExp:
				d.state = stNumE
			default:
				// The number ended before c, which is looked at again in
				// stCommaOrClose (or starts the next value).
				if d.endValue() {
					d.pos = i
					return true, nil
				}
				continue
			}
			i++
			continue
		case stNumDot, stNumE, stNumESign:
			switch {
			case isDigit(c):
				if d.state == stNumDot {
					d.state = stNumFrac
				} else {
					d.state = stNumExp
				}
			case (c == '+' || c == '-') && d.state == stNumE:
				d.state = stNumESign
			case d.state == stNumDot:
				return false, d.fail(i, "invalid character "+quoteByte(c)+" after '.' in number", true)
			default:
				return false, d.fail(i, "invalid character "+quoteByte(c)+" in exponent", true)
			}
			i++
			continue
		}

		// Structural states: whitespace is allowed between tokens.
		if isJSONSpace(c) {
			i++
			continue
		}
		switch d.state {
		case stTop, stValue, stValueOrClose:
			if c == ']' && d.state == stValueOrClose {
				i++
				if d.closeContainer() {
					d.pos = i
					return true, nil
				}
				continue
			}
			if err := d.beginValue(i, c); err != nil {
				return false, err
			}
			i++
		case stKeyOrClose, stKey:
			if c == '}' && d.state == stKeyOrClose {
				i++
				if d.closeContainer() {
					d.pos = i
					return true, nil
				}
				continue
			}
			if c != '"' {
				return false, d.unexpected(i, "looking for an object key")
			}
			d.state, d.strKey = stString, true
			i++
		case stColon:
			if c != ':' {
				return false, d.unexpected(i, "after object key")
			}
			d.state = stValue
			i++
		case stCommaOrClose:
			top := d.stack[len(d.stack)-1]
			switch {
			case c == ',' && top == '{':
				d.state = stKey
			case c == ',':
				d.state = stValue
			case c == '}' && top == '{', c == ']' && top == '[':
				i++
				if d.closeContainer() {
					d.pos = i
					return true, nil
				}
				continue
			default:
				if top == '{' {
					return false, d.unexpected(i, "after object member")
				}
				return false, d.unexpected(i, "after array element")
			}
			i++
		}
	}
	d.pos = i
	return false, nil
}

// beginValue starts the value whose first byte is in[i] == c.
func (d *Decoder) beginValue(i int, c byte) error {
	switch c {
	case '{', '[':
		if len(d.stack) >= d.maxDepth {
			return d.fail(i, fmt.Sprintf("nesting deeper than the limit of %d", d.maxDepth), false)
		}
		d.stack = append(d.stack, c)
		if c == '{' {
			d.state = stKeyOrClose
		} else {
			d.state = stValueOrClose
		}
	case '"':
		d.state, d.strKey = stString, false
	case '-':
		d.state = stNumMinus
	case '0':
		d.state = stNumZero
	case 't':
		d.state, d.lit, d.litPos = stLiteral, "true", 1
	case 'f':
		d.state, d.lit, d.litPos = stLiteral, "false", 1
	case 'n':
		d.state, d.lit, d.litPos = stLiteral, "null", 1
	default:
		if '1' <= c && c <= '9' {
			d.state = stNumInt
			return nil
		}
		return d.unexpected(i, "looking for a value")
	}
	return nil
}

// endValue records the end of a scalar value and reports whether it was the
// whole top-level value.
func (d *Decoder) endValue() bool {
	if len(d.stack) == 0 {
		d.state = stTop
		return true
	}
	d.state = stCommaOrClose
	return false
}

// closeContainer pops a container and reports whether it was the top level.
func (d *Decoder) closeContainer() bool {
	d.stack = d.stack[:len(d.stack)-1]
	return d.endValue()
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func quoteByte(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("0x%02x", c)
}
