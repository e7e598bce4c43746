package frame

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wirereactor/wirereactor/hgcbor"
)

// HumanError reports a human-syntax frame string that cannot be parsed. It
// names the field and quotes what was seen there.
type HumanError struct {
	Field  string // "frame", "request id", "stream id", "stream flags", "type", "flags" or "payload"
	Value  string // the text of the field, shortened if long
	Reason string
	Err    error // the underlying error, if any (e.g. from hgcbor)
}

// Error names the field and quotes what was seen there.
func (e *HumanError) Error() string {
	return fmt.Sprintf("frame: invalid %s %q in human frame: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns the underlying error, if any.
func (e *HumanError) Unwrap() error { return e.Err }

func humanErr(field, value, reason string, err error) *HumanError {
	if len(value) > 64 {
		value = value[:61] + "..."
	}
	return &HumanError{Field: field, Value: value, Reason: reason, Err: err}
}

// ParseHuman builds a frame from the human-readable syntax of Mercurial's
// makeframefromhumanstring, which Mercurial's tests and this project's tests
// use to write frames:
//
//	<request-id> <stream-id> <stream-flags> <type> <flags> <payload>
//
// Fields are separated by single spaces; the payload is the rest of the
// string and may contain spaces. Request and stream ids are integers. Stream
// flags, type and flags are names (stream-begin, command-request, new, eos,
// …) or integers; flags may be joined with "|". A payload starting with
// "cbor:" is a Python literal encoded with hgcbor (b'…' is a byte string,
// '…' a text string); any other payload is a byte string with Python escapes
// (\n, \x00, \\, octal, …), decoded as Mercurial's unescapestr does.
//
// Integers are read as Python's int() reads them (surrounding whitespace,
// a sign, underscores between digits). Like Mercurial, ParseHuman accepts
// stream-flag and frame-flag bits that have no name; unlike Mercurial, it
// rejects a flags value that does not fit in 4 bits (Mercurial ORs it into
// the type nibble), accepts text strings in cbor: literals (Mercurial's
// Python 3 encoder cannot encode str) and rejects tuples as dict keys or set
// elements (hgcbor cannot hold them). The result does not alias s.
func ParseHuman(s string) (Frame, error) {
	fields := strings.SplitN(s, " ", 6)
	if len(fields) < 6 {
		return Frame{}, humanErr("frame", s, fmt.Sprintf("want 6 space-separated fields, found %d", len(fields)), nil)
	}
	var f Frame
	rid, err := pyInt("request id", fields[0], 0xffff)
	if err != nil {
		return Frame{}, err
	}
	sid, err := pyInt("stream id", fields[1], 0xff)
	if err != nil {
		return Frame{}, err
	}
	f.RequestID, f.StreamID = uint16(rid), uint8(sid)

	var sflags uint64
	for _, part := range strings.Split(fields[2], "|") {
		if fl, ok := StreamFlagByName(part); ok {
			sflags |= uint64(fl)
			continue
		}
		v, err := pyInt("stream flags", part, 0xff)
		if err != nil {
			return Frame{}, err
		}
		sflags |= v
	}
	f.StreamFlags = StreamFlags(sflags)

	if t, ok := TypeByName(fields[3]); ok {
		f.Type = t
	} else {
		v, err := pyInt("type", fields[3], 0xff)
		if err != nil {
			return Frame{}, err
		}
		if !Type(v).Valid() {
			return Frame{}, humanErr("type", fields[3], "not a frame type", nil)
		}
		f.Type = Type(v)
	}

	var flags uint64
	for _, part := range strings.Split(fields[4], "|") {
		if fl, ok := f.Type.FlagByName(part); ok {
			flags |= uint64(fl)
			continue
		}
		if _, isInt := parsePyInt(part); !isInt {
			return Frame{}, humanErr("flags", part, fmt.Sprintf("not an integer or a flag of %s frames", f.Type), nil)
		}
		v, err := pyInt("flags", part, 0x0f)
		if err != nil {
			return Frame{}, err
		}
		flags |= v
	}
	f.Flags = Flags(flags)

	payload := fields[5]
	if lit, ok := strings.CutPrefix(payload, "cbor:"); ok {
		v, err := hgcbor.ParsePythonLiteral(lit)
		if err != nil {
			return Frame{}, humanErr("payload", payload, err.Error(), err)
		}
		b, err := hgcbor.Marshal(v)
		if err != nil {
			return Frame{}, humanErr("payload", payload, err.Error(), err)
		}
		f.Payload = b
	} else {
		b, err := unescape(payload)
		if err != nil {
			return Frame{}, humanErr("payload", payload, err.Error(), nil)
		}
		f.Payload = b
	}
	if len(f.Payload) > MaxPayload {
		return Frame{}, humanErr("payload", payload, fmt.Sprintf("%d bytes exceed the %d-byte frame limit", len(f.Payload), MaxPayload), nil)
	}
	return f, nil
}

// MustParseHuman is ParseHuman for tests and examples: it panics if s does
// not parse.
func MustParseHuman(s string) Frame {
	f, err := ParseHuman(s)
	if err != nil {
		panic(err)
	}
	return f
}

// pyInt parses s as Python's int() does and checks it is in [0, max].
func pyInt(field, s string, max uint64) (uint64, error) {
	v, ok := parsePyInt(s)
	if !ok {
		return 0, humanErr(field, s, "not an integer", nil)
	}
	if v < 0 || uint64(v) > max {
		return 0, humanErr(field, s, fmt.Sprintf("out of range [0, %d]", max), nil)
	}
	return uint64(v), nil
}

// parsePyInt reads a base-10 integer as Python's int(bytes) does: ASCII
// whitespace around it, an optional sign, digits with single underscores
// between them. Values beyond int64 saturate, which every caller rejects as
// out of range.
func parsePyInt(s string) (int64, bool) {
	s = strings.Trim(s, " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") || len(s) > 4300 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if v < (1<<62)/10 {
			v = v*10 + int64(c-'0')
		} else {
			v = 1 << 62
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// unescape decodes Python escape sequences the way codecs.escape_decode,
// and so Mercurial's stringutil.unescapestr, does.
func unescape(s string) ([]byte, error) {
	if strings.IndexByte(s, '\\') < 0 {
		if s == "" {
			return nil, nil
		}
		return []byte(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("trailing \\ in string")
		}
		c = s[i]
		switch c {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, c)
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'n':
			out = append(out, 10)
		case 'r':
			out = append(out, 13)
		case 't':
			out = append(out, 9)
		case 'v':
			out = append(out, 11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			out = append(out, byte(v))
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("invalid \\x escape at position %d", i-1)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("invalid \\x escape at position %d", i-1)
			}
			out = append(out, byte(v))
			i += 2
		default:
			out = append(out, '\\', c)
		}
	}
	return out, nil
}

// FormatHuman renders f in the syntax ParseHuman reads, so that
// ParseHuman(FormatHuman(f)) reproduces f: names for the type and for known
// flags, integers for bits without a name, and the payload as an escaped
// byte string (printable ASCII as is, everything else as \xNN). f.Type must
// be a defined type and f.Flags must fit in 4 bits for the result to parse.
func FormatHuman(f Frame) string {
	var b strings.Builder
	b.Grow(32 + len(f.Payload))
	b.WriteString(strconv.Itoa(int(f.RequestID)))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(int(f.StreamID)))
	b.WriteByte(' ')
	writeHumanFlags(&b, streamFlagNames, uint8(f.StreamFlags))
	b.WriteByte(' ')
	if f.Type.Valid() {
		b.WriteString(f.Type.String())
	} else {
		b.WriteString(strconv.Itoa(int(f.Type)))
	}
	b.WriteByte(' ')
	var names []flagName
	if f.Type < 16 {
		names = typeFlagNames[f.Type]
	}
	writeHumanFlags(&b, names, uint8(f.Flags))
	b.WriteByte(' ')
	writeEscaped(&b, f.Payload)
	return b.String()
}

// writeHumanFlags writes the named bits of v joined by "|", then the
// remaining bits as one integer; "0" when v is 0.
func writeHumanFlags(b *strings.Builder, names []flagName, v uint8) {
	first := true
	for _, fn := range names {
		if v&fn.bit != 0 {
			if !first {
				b.WriteByte('|')
			}
			b.WriteString(fn.name)
			v &^= fn.bit
			first = false
		}
	}
	if v != 0 || first {
		if !first {
			b.WriteByte('|')
		}
		b.WriteString(strconv.Itoa(int(v)))
	}
}

const hexDigits = "0123456789abcdef"

func writeEscaped(b *strings.Builder, p []byte) {
	for i, c := range p {
		// A payload that would read as "cbor:" gets its first byte escaped.
		escape := c < 0x20 || c >= 0x7f || c == '\\' || (i == 0 && c == 'c' && hasCBORPrefix(p))
		if escape {
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
}

func hasCBORPrefix(p []byte) bool { return strings.HasPrefix(string(p), "cbor:") }
