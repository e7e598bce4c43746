package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// This file holds the small, allocation-free JSON tools the machines use on
// values the stream decoder has already validated: walking the members of an
// object, skipping values, comparing keys, and appending JSON.

var errMalformed = errors.New("malformed JSON")

// members walks the members of a JSON object. The object must be valid JSON
// (the stream decoder guarantees it); on anything else next reports false and
// err is set, without panicking.
type members struct {
	b   []byte
	i   int
	err error
}

// newMembers starts walking obj, which must begin with '{'.
func newMembers(obj []byte) members {
	m := members{b: obj}
	m.i = skipSpace(obj, 0)
	if m.i >= len(obj) || obj[m.i] != '{' {
		m.err = errMalformed
		return m
	}
	m.i++
	return m
}

// next returns the next member's raw key (with quotes) and raw value.
func (m *members) next() (key, value []byte, ok bool) {
	if m.err != nil {
		return nil, nil, false
	}
	b := m.b
	i := skipSpace(b, m.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) {
		m.err = errMalformed
		return nil, nil, false
	}
	if b[i] == '}' {
		m.i = i + 1
		return nil, nil, false
	}
	kEnd, ok := skipValue(b, i)
	if !ok || b[i] != '"' {
		m.err = errMalformed
		return nil, nil, false
	}
	key = b[i:kEnd]
	i = skipSpace(b, kEnd)
	if i >= len(b) || b[i] != ':' {
		m.err = errMalformed
		return nil, nil, false
	}
	i = skipSpace(b, i+1)
	vEnd, ok := skipValue(b, i)
	if !ok {
		m.err = errMalformed
		return nil, nil, false
	}
	m.i = vEnd
	// Two-index slices keep cap(value) = cap(b) - offset, which rebase uses.
	return key, b[i:vEnd], true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return end, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	default:
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\n', '\r', '\t':
				return i, i > start
			}
			i++
		}
		return i, i > start
	}
}

func skipString(b []byte, i int) (int, bool) {
	i++ // opening quote
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1, true
		}
		i++
	}
	return i, false
}

// keyIs reports whether the raw key (with quotes) names name.
func keyIs(key []byte, name string) bool {
	if len(key) == len(name)+2 && string(key[1:len(key)-1]) == name {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	var s string // escaped key: rare, decode it
	return json.Unmarshal(key, &s) == nil && s == name
}

// unquote decodes a raw JSON string, without encoding/json when it holds no
// escapes.
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// parseInt parses a raw JSON number holding an integer; numbers written with
// a fraction or exponent count when their value is integral (QEMU echoes 1.0
// as 1 and 1e3 as 1000).
func parseInt(raw []byte) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	neg := raw[0] == '-'
	digits := raw
	if neg {
		digits = raw[1:]
	}
	var n uint64
	plain := len(digits) > 0 && len(digits) <= 18
	for _, c := range digits {
		if c < '0' || c > '9' {
			plain = false
			break
		}
		n = n*10 + uint64(c-'0')
	}
	if plain {
		if neg {
			return -int64(n), true
		}
		return int64(n), true
	}
	if len(raw) > 64 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// SameID reports whether two raw JSON ids are equal by value, the way a QMP
// client must compare them: QEMU re-encodes the ids it echoes, so 1.0 comes
// back as 1, 1e3 as 1000 and "\u00e9" as "\u00E9". Numbers compare by numeric
// value, strings by their decoded text, other values structurally. Two absent
// (empty) ids are the same; an absent id differs from any present one.
func SameID(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	if bytes.Equal(a, b) {
		return true
	}
	if isNumberStart(a[0]) && isNumberStart(b[0]) {
		if x, ok := parseInt(a); ok {
			y, ok := parseInt(b)
			return ok && x == y
		}
		x, errA := strconv.ParseFloat(string(a), 64)
		y, errB := strconv.ParseFloat(string(b), 64)
		return errA == nil && errB == nil && x == y
	}
	if a[0] == '"' && b[0] == '"' {
		x, okA := unquote(a)
		y, okB := unquote(b)
		return okA && okB && x == y
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func isNumberStart(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// isObject reports whether raw is a valid JSON object.
func isObject(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(raw)
}
