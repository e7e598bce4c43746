package hgcbor

import (
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"
)

// DefaultMaxDepth is how deeply collections may nest when no other limit is
// configured. Mercurial's own payloads nest a handful of levels.
const DefaultMaxDepth = 256

// Unmarshal decodes data, which must hold exactly one CBOR item. Values are
// typed as the package documentation describes and do not alias data.
func Unmarshal(data []byte) (any, error) {
	v, rest, err := UnmarshalFirst(data)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, &DecodeError{Offset: len(data) - len(rest), Err: ErrTrailingData,
			Detail: fmt.Sprintf("%d bytes", len(rest))}
	}
	return v, nil
}

// UnmarshalFirst decodes the first CBOR item in data and returns it with the
// bytes that follow it; rest aliases data.
func UnmarshalFirst(data []byte) (v any, rest []byte, err error) {
	d := decoder{data: data, maxDepth: DefaultMaxDepth}
	v, err = d.item(0, false)
	if err != nil {
		return nil, data, err
	}
	return v, data[d.off:], nil
}

// DecodeAll decodes every item in data, a sequence of CBOR items one after
// the other, like cborutil.decodeall. Empty input yields no items. Any item
// that is incomplete or malformed is an error.
func DecodeAll(data []byte) ([]any, error) {
	var out []any
	d := decoder{data: data, maxDepth: DefaultMaxDepth}
	for d.off < len(data) {
		v, err := d.item(0, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// decoder decodes items from a complete buffer by recursive descent.
type decoder struct {
	data     []byte
	off      int
	base     int // added to offsets in errors
	maxDepth int
	arena    []byte // backs the decoded short strings; see copyString
}

// Strings of up to arenaMaxString bytes are copied into a shared arena of up
// to arenaChunk bytes, one allocation for many strings instead of one each.
const (
	arenaMaxString = 64
	arenaChunk     = 1024
)

// copyString copies p, a string just decoded, to memory of its own. A short
// one goes to the arena, with its capacity cut to its length so that
// appending to one value cannot overwrite the next. A new arena is at most
// what the rest of the input can still fill, so the arenas of a decode add
// up to at most the input's size plus one chunk. Arena memory is never
// written after it is handed out, so strings may point into it too
// (unsafe.String in item); a value kept alive keeps its arena alive, a
// bounded cost.
func (d *decoder) copyString(p []byte) []byte {
	n := len(p)
	if n == 0 {
		return []byte{}
	}
	if n > arenaMaxString {
		return append(make([]byte, 0, n), p...)
	}
	if cap(d.arena)-len(d.arena) < n {
		d.arena = make([]byte, 0, min(arenaChunk, n+len(d.data)-d.off))
	}
	start := len(d.arena)
	d.arena = append(d.arena, p...)
	return d.arena[start : start+n : start+n]
}

// stringOf returns b, a copy no []byte will ever alias, as a string.
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (d *decoder) fail(at int, err error, detail string) error {
	return &DecodeError{Offset: d.base + at, Err: err, Detail: detail}
}

// head reads an item head at d.off: major type, additional information and
// argument (0 for indefinite). It advances d.off past the head.
func (d *decoder) head() (major, ai byte, arg uint64, err error) {
	start := d.off
	if start >= len(d.data) {
		return 0, 0, 0, d.fail(start, ErrTruncated, "")
	}
	ib := d.data[start]
	major, ai = ib>>5, ib&0x1f
	n := 0
	switch {
	case ai < 24:
		d.off++
		return major, ai, uint64(ai), nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	case ai == indefinite:
		d.off++
		return major, ai, 0, nil
	default:
		return 0, 0, 0, d.fail(start, ErrMalformed, fmt.Sprintf("reserved additional information %d in initial byte 0x%02x", ai, ib))
	}
	if len(d.data)-start-1 < n {
		return 0, 0, 0, d.fail(start, ErrTruncated, "")
	}
	for _, b := range d.data[start+1 : start+1+n] {
		arg = arg<<8 | uint64(b)
	}
	d.off = start + 1 + n
	return major, ai, arg, nil
}

// item decodes one item. asKey means the item is a map key or set element:
// it must be a scalar, and byte strings become Bytes.
func (d *decoder) item(depth int, asKey bool) (any, error) {
	start := d.off
	major, ai, arg, err := d.head()
	if err != nil {
		return nil, err
	}
	switch major {
	case majorUint:
		if arg <= math.MaxInt64 {
			return int64(arg), nil
		}
		return arg, nil
	case majorNegint:
		if arg <= math.MaxInt64 {
			return ^int64(arg), nil
		}
		return NegInt(arg), nil
	case majorBytes, majorText:
		if ai == indefinite {
			p, err := d.chunks(start, major)
			switch {
			case err != nil:
				return nil, err
			case major == majorText:
				return string(p), nil
			case asKey:
				return Bytes(p), nil
			}
			return p, nil
		}
		// p aliases the input: copy it exactly once.
		p, err := d.definiteString(start, major, arg)
		if err != nil {
			return nil, err
		}
		c := d.copyString(p)
		switch {
		case major == majorText:
			return stringOf(c), nil
		case asKey:
			return Bytes(stringOf(c)), nil
		}
		return c, nil
	case majorArray:
		if asKey {
			return nil, d.fail(start, ErrInvalidKey, "array")
		}
		if depth >= d.maxDepth {
			return nil, d.fail(start, ErrTooDeep, fmt.Sprintf("limit %d", d.maxDepth))
		}
		return d.array(ai, arg, depth)
	case majorMap:
		if asKey {
			return nil, d.fail(start, ErrInvalidKey, "map")
		}
		if depth >= d.maxDepth {
			return nil, d.fail(start, ErrTooDeep, fmt.Sprintf("limit %d", d.maxDepth))
		}
		return d.mapItem(ai, arg, depth)
	case majorTag:
		if ai == indefinite {
			return nil, d.fail(start, ErrMalformed, "indefinite-length semantic tag")
		}
		if arg != tagFiniteSet {
			return nil, d.fail(start, ErrUnsupported, fmt.Sprintf("semantic tag %d", arg))
		}
		if asKey {
			return nil, d.fail(start, ErrInvalidKey, "set")
		}
		return d.set(depth)
	default: // majorSpecial
		switch ai {
		case 20:
			return false, nil
		case 21:
			return true, nil
		case 22:
			return nil, nil
		case 23:
			return nil, d.fail(start, ErrUnsupported, "undefined")
		case 25, 26, 27:
			return nil, d.fail(start, ErrUnsupported, "floating-point number")
		case indefinite:
			return nil, d.fail(start, ErrMalformed, "unexpected break")
		default:
			return nil, d.fail(start, ErrUnsupported, fmt.Sprintf("simple value %d", arg))
		}
	}
}

// definiteString returns the n bytes of a definite-length string; they
// alias the input.
func (d *decoder) definiteString(start int, major byte, n uint64) ([]byte, error) {
	if n > uint64(len(d.data)-d.off) {
		return nil, d.fail(start, ErrTruncated, fmt.Sprintf("string of %d bytes", n))
	}
	p := d.data[d.off : d.off+int(n)]
	d.off += int(n)
	if major == majorText && !utf8.Valid(p) {
		return nil, d.fail(start, ErrInvalidUTF8, "")
	}
	return p, nil
}

// chunks decodes the chunks of an indefinite-length string up to its break.
func (d *decoder) chunks(start int, major byte) ([]byte, error) {
	p := []byte{}
	for {
		if d.off >= len(d.data) {
			return nil, d.fail(start, ErrTruncated, "indefinite-length string")
		}
		if d.data[d.off] == breakByte {
			d.off++
			return p, nil
		}
		cstart := d.off
		cmajor, cai, n, err := d.head()
		if err != nil {
			return nil, err
		}
		if cmajor != major || cai == indefinite {
			return nil, d.fail(cstart, ErrMalformed, fmt.Sprintf("chunk with initial byte 0x%02x in indefinite-length string", d.data[cstart]))
		}
		if n > uint64(len(d.data)-d.off) {
			return nil, d.fail(cstart, ErrTruncated, fmt.Sprintf("string of %d bytes", n))
		}
		c := d.data[d.off : d.off+int(n)]
		if major == majorText && !utf8.Valid(c) {
			return nil, d.fail(cstart, ErrInvalidUTF8, "")
		}
		p = append(p, c...)
		d.off += int(n)
	}
}

// atBreak consumes a break byte if one is next.
func (d *decoder) atBreak() bool {
	if d.off < len(d.data) && d.data[d.off] == breakByte {
		d.off++
		return true
	}
	return false
}

// capFor bounds a preallocation by what the remaining input can hold: every
// item takes at least one byte, so an untrusted count cannot force a large
// allocation.
func (d *decoder) capFor(n uint64, per int) int {
	rem := uint64(len(d.data)-d.off) / uint64(per)
	return int(min(n, rem))
}

func (d *decoder) array(ai byte, n uint64, depth int) (any, error) {
	if ai == indefinite {
		out := []any{}
		for !d.atBreak() {
			v, err := d.item(depth+1, false)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	out := make([]any, 0, d.capFor(n, 1))
	for range n {
		v, err := d.item(depth+1, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *decoder) mapItem(ai byte, n uint64, depth int) (any, error) {
	m := make(map[any]any, d.capFor(n, 2))
	for i := uint64(0); ; i++ {
		if ai == indefinite {
			if d.atBreak() {
				return m, nil
			}
		} else if i == n {
			return m, nil
		}
		k, err := d.item(depth+1, true)
		if err != nil {
			return nil, err
		}
		v, err := d.item(depth+1, false)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
}

func (d *decoder) set(depth int) (any, error) {
	start := d.off
	major, ai, n, err := d.head()
	if err != nil {
		return nil, err
	}
	if major != majorArray {
		return nil, d.fail(start, ErrMalformed, fmt.Sprintf("finite set tag followed by initial byte 0x%02x, want an array", d.data[start]))
	}
	if depth >= d.maxDepth {
		return nil, d.fail(start, ErrTooDeep, fmt.Sprintf("limit %d", d.maxDepth))
	}
	ents := make([]entry, 0, d.capFor(n, 1))
	for i := uint64(0); ; i++ {
		if ai == indefinite {
			if d.atBreak() {
				break
			}
		} else if i == n {
			break
		}
		v, err := d.item(depth+1, true)
		if err != nil {
			return nil, err
		}
		k, err := keyOf(v)
		if err != nil {
			return nil, err
		}
		ents = append(ents, entry{key: k, value: v})
	}
	sortEntries(ents)
	out := make(Set, 0, len(ents))
	for i := range ents {
		if i > 0 && ents[i].key.compare(&ents[i-1].key) == 0 {
			continue
		}
		out = append(out, ents[i].value)
	}
	return out, nil
}
