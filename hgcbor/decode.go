package hgcbor

import (
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"

	"github.com/wirereactor/wirereactor/action"
)

// DefaultMaxDepth is how deeply collections may nest when no other limit is
// configured. Mercurial's own payloads nest a handful of levels.
const DefaultMaxDepth = 256

// The default decoded-size budget: decoding n bytes of input may build
// values taking up to DefaultDecodedRatio*n bytes of memory, and at least
// DefaultDecodedFloor bytes whatever n (a small map alone takes a few
// hundred bytes). See DecodeOptions.MaxDecodedBytes.
const (
	DefaultDecodedRatio = 4
	DefaultDecodedFloor = 64 << 10
)

// DefaultDecodedSize returns the decoded size allowed for n bytes of input
// when no other limit is configured: DefaultDecodedRatio*n, at least
// DefaultDecodedFloor.
func DefaultDecodedSize(n int) int64 {
	return max(int64(n)*DefaultDecodedRatio, DefaultDecodedFloor)
}

// DecodeOptions bounds what decoding may build. Without a bound an input
// of one-byte integers would decode to sixteen bytes of memory per input
// byte, a small map of short strings to a hundred. The zero value applies
// the defaults.
//
// The decoded size of a value is the memory decoding it allocates on a
// 64-bit Go runtime, counted as the decoder goes from the declared lengths
// and counts (interfaces, boxed integers and slice headers, string and
// array contents, map tables, rounded up); a limit is checked before the
// allocation that would exceed it, so an input over the budget fails
// without the memory ever being taken. Check reports the decoded size of
// an item without building it.
type DecodeOptions struct {
	// MaxDepth bounds how deeply collections nest (DefaultMaxDepth when
	// zero).
	MaxDepth int
	// MaxItems bounds how many items (scalars, strings, collections, map
	// keys) are decoded. Zero means no bound beyond the input's length.
	MaxItems int
	// MaxDecodedBytes bounds the decoded size of what one call decodes, in
	// bytes. Zero means DefaultDecodedSize of the input's length.
	MaxDecodedBytes int64
	// RejectText makes a text string an error wrapping ErrTextString, as
	// Mercurial's decoder rejects them outright.
	RejectText bool
}

// Unmarshal decodes data, which must hold exactly one CBOR item, within the
// package's default limits. Values are typed as the package documentation
// describes and do not alias data.
func Unmarshal(data []byte) (any, error) { return DecodeOptions{}.Unmarshal(data) }

// UnmarshalFirst decodes the first CBOR item in data within the package's
// default limits and returns it with the bytes that follow it; rest aliases
// data.
func UnmarshalFirst(data []byte) (v any, rest []byte, err error) {
	return DecodeOptions{}.UnmarshalFirst(data)
}

// DecodeAll decodes every item in data within the package's default limits;
// see DecodeOptions.DecodeAll.
func DecodeAll(data []byte) ([]any, error) { return DecodeOptions{}.DecodeAll(data) }

// Unmarshal decodes data, which must hold exactly one CBOR item.
func (o DecodeOptions) Unmarshal(data []byte) (any, error) {
	v, rest, err := o.UnmarshalFirst(data)
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
// bytes that follow it; rest aliases data. The decoded-size budget is
// reckoned on the whole of data.
func (o DecodeOptions) UnmarshalFirst(data []byte) (v any, rest []byte, err error) {
	d := o.decoder(data)
	v, err = d.item(0, false)
	if err != nil {
		return nil, data, err
	}
	return v, data[d.off:], nil
}

// DecodeAll decodes every item in data, a sequence of CBOR items one after
// the other, like cborutil.decodeall. Empty input yields no items. Any item
// that is incomplete or malformed is an error. The limits apply to all the
// items together.
func (o DecodeOptions) DecodeAll(data []byte) ([]any, error) {
	var out []any
	d := o.decoder(data)
	for d.off < len(data) {
		if err := d.charge(d.off, 0, sizeSlot*2); err != nil { // the slot in out, grown by append
			return nil, err
		}
		v, err := d.item(0, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Check validates the first item of data exactly as UnmarshalFirst would
// decode it — well-formedness, Mercurial's subset, every limit — without
// building anything, and returns its length in bytes and its decoded size
// (the measure MaxDecodedBytes bounds). It allocates nothing unless it
// fails.
func (o DecodeOptions) Check(data []byte) (n int, size int64, err error) {
	d := o.decoder(data)
	d.check = true
	if d.quickItem(0) && d.withinLimits() {
		return d.off, d.size, nil
	}
	return o.checkSlow(data)
}

// CheckFields is Check for an item read as a map with known keys, the
// request envelope {b'name': …, b'args': …} say: in the same pass, when the
// item is a map, it sets values[i] to the value of its entry whose key is
// the byte string keys[i] (the last one if the key is repeated, as
// decoding keeps it), and to nil when there is none. values, at least as
// long as keys, alias data.
func (o DecodeOptions) CheckFields(data []byte, keys []string, values []RawMessage) (n int, size int64, err error) {
	values = values[:len(keys)]
	clear(values)
	d := o.decoder(data)
	d.check = true
	if d.quickFields(keys, values) {
		return d.off, d.size, nil
	}
	clear(values)
	if n, size, err = o.checkSlow(data); err != nil {
		return 0, 0, err
	}
	for k, v := range RawMessage(data[:n]).Entries() {
		if kb, ok := k.Bytes(); ok {
			for i, key := range keys {
				if string(kb) == key {
					values[i] = v
				}
			}
		}
	}
	return n, size, nil
}

// quickFields is CheckFields' fast path: a definite-length map of fewer
// than 24 entries whose keys are definite byte strings (or other scalars),
// each key and value checked by quickItem.
func (d *decoder) quickFields(keys []string, values []RawMessage) bool {
	data := d.data
	switch {
	case len(data) == 0:
		return false
	case data[0]>>5 != majorMap:
		return d.quickItem(0) && d.withinLimits() // not a map: no values
	case data[0]&0x1f >= 24:
		return false // a larger or indefinite map: the general path
	}
	n := int(data[0] & 0x1f)
	d.off = 1
	d.items++
	d.size += sizeMap + int64(min(n, (len(data)-1)/2))*sizeMapEntry // as capFor
	for range n {
		// The key: a scalar (quickItem refuses collections at depth 0 as
		// keys only through the slow path, so check the head here).
		if d.off >= len(data) {
			return false
		}
		kh := data[d.off]
		if m := kh >> 5; m == majorArray || m == majorMap || m == majorTag {
			return false
		}
		kstart := d.off
		if !d.quickItem(1) {
			return false
		}
		field := -1
		if kh>>5 == majorBytes && kh&0x1f < 24 {
			k := data[kstart+1 : d.off]
			for i, key := range keys {
				if len(key) == len(k) && string(k) == key {
					field = i
				}
			}
		} else if kh>>5 == majorBytes {
			return false // a longer key: the general path
		}
		vstart := d.off
		if !d.quickItem(1) {
			return false
		}
		if field >= 0 {
			values[field] = RawMessage(data[vstart:d.off:d.off])
		}
	}
	return d.withinLimits()
}

// withinLimits reports whether the counts are within the limits.
func (d *decoder) withinLimits() bool {
	return d.size <= d.maxSize && (d.maxItems <= 0 || d.items <= d.maxItems)
}

// checkSlow is Check without its fast path.
func (o DecodeOptions) checkSlow(data []byte) (n int, size int64, err error) {
	d := o.decoder(data)
	d.check = true
	if _, err := d.item(0, false); err != nil {
		return 0, 0, err
	}
	return d.off, d.size, nil
}

// quickItem is Check's fast path for the usual shapes: integers,
// definite-length strings, arrays and maps, false, true and null, nested
// up to 8 deep. It checks the item at d.off, at depth depth, in a loop
// instead of by recursion, and charges exactly what item charges
// (FuzzHgcborDecode compares the two) but leaves the limits to
// withinLimits: nothing is allocated, so they can wait. It reports false
// for anything else or anything wrong, leaving the general path to say
// what.
func (d *decoder) quickItem(depth int) bool {
	data := d.data
	off := d.off
	items, size, free := d.items, d.size, d.free
	// A scalar or a short string, the usual map key or value, needs no
	// stack.
	if off < len(data) {
		switch ib := data[off]; {
		case ib < 0x40 && ib&0x1f < 24: // a small integer
			d.off, d.items, d.size = off+1, items+1, size+sizeBoxInt
			return true
		case ib >= 0x40 && ib < 0x58: // a byte string of up to 23 bytes
			n := int(ib & 0x1f)
			if len(data)-off-1 < n {
				return false
			}
			off += 1 + n
			size += sizeBoxSlice
			switch {
			case n == 0:
			case free >= n:
				free -= n
			default:
				c := min(arenaChunk, n+len(data)-off)
				free = c - n
				size += allocSize(int64(c))
			}
			d.off, d.items, d.size, d.free = off, items+1, size, free
			return true
		}
	}
	type level struct {
		left  uint64 // items still to come; in a map, a key comes when it is even
		isMap bool
	}
	var stack [8]level
	sp := 0
	for {
		if off >= len(data) {
			return false
		}
		ib := data[off]
		major, ai := ib>>5, ib&0x1f
		off++
		arg := uint64(ai)
		if ai >= 24 {
			if ai > 27 {
				return false // indefinite or reserved
			}
			h := 1 << (ai - 24)
			if len(data)-off < h {
				return false
			}
			arg = 0
			for _, b := range data[off : off+h] {
				arg = arg<<8 | uint64(b)
			}
			off += h
		}
		items++
		switch major {
		case majorUint, majorNegint:
			size += sizeBoxInt
		case majorBytes, majorText:
			if arg > uint64(len(data)-off) {
				return false
			}
			n := int(arg)
			if major == majorText && (d.noText || !utf8.Valid(data[off:off+n])) {
				return false
			}
			off += n
			// As stringSize: the arena, followed.
			size += sizeBoxSlice
			switch {
			case n == 0:
			case n > arenaMaxString:
				size += allocSize(int64(n))
			case free >= n:
				free -= n
			default:
				c := min(arenaChunk, n+len(data)-off)
				free = c - n
				size += allocSize(int64(c))
			}
		case majorArray, majorMap:
			if sp > 0 && stack[sp-1].isMap && stack[sp-1].left%2 == 0 {
				return false // a collection as a map key
			}
			if depth+sp >= d.maxDepth || sp == len(stack) || arg > uint64(len(data)) {
				return false
			}
			rem := uint64(len(data) - off) // as capFor
			if major == majorArray {
				size += sizeBoxSlice + allocSize(int64(min(arg, rem))*sizeSlot)
			} else {
				size += sizeMap + int64(min(arg, rem/2))*sizeMapEntry
				arg *= 2
			}
			if arg > 0 {
				stack[sp] = level{left: arg, isMap: major == majorMap}
				sp++
				continue
			}
		case majorSpecial:
			if ai < 20 || ai > 22 {
				return false
			}
		default:
			return false // tags
		}
		// An item ended: count it against the open collections.
		for sp > 0 {
			if stack[sp-1].left--; stack[sp-1].left > 0 {
				break
			}
			sp--
		}
		if sp == 0 {
			break
		}
	}
	d.off, d.items, d.size, d.free = off, items, size, free
	return true
}

func (o DecodeOptions) decoder(data []byte) decoder {
	d := decoder{data: data, maxDepth: o.MaxDepth, noText: o.RejectText,
		maxItems: int64(o.MaxItems), maxSize: o.MaxDecodedBytes}
	if d.maxDepth <= 0 {
		d.maxDepth = DefaultMaxDepth
	}
	if d.maxSize <= 0 {
		d.maxSize = DefaultDecodedSize(len(data))
	}
	return d
}

// decoder decodes items from a complete buffer by recursive descent. In
// check mode it validates and measures only.
type decoder struct {
	data     []byte
	off      int
	base     int // added to offsets in errors
	maxDepth int
	arena    []byte // backs the decoded short strings; see copyString
	free     int    // room left in the arena, tracked in check mode too
	noText   bool
	check    bool // build nothing: validate and count

	items, maxItems int64 // maxItems 0: no bound
	size, maxSize   int64
}

// Decoded sizes of what the decoder builds, an upper bound of what it
// allocates on a 64-bit runtime (TestDecodedSizeIsAnUpperBound checks it).
const (
	sizeSlot      = 16  // an interface in an array, a set or a map
	sizeBoxInt    = 8   // an integer stored in an interface
	sizeBoxSlice  = 24  // a slice header stored in an interface
	sizeBoxString = 16  // a string header stored in an interface
	sizeMap       = 384 // a map and its first group of slots
	sizeMapEntry  = 96  // per entry: its share of the table at the lowest load
	sizeSetEntry  = 48  // per element: the sort entry, before the Set is built
)

// allocSize is what an allocation of n bytes may take once rounded up to
// the allocator's size classes or pages.
func allocSize(n int64) int64 { return n + n/4 + 16 }

// charge counts items and bytes of decoded size against the limits, for the
// item starting at at.
func (d *decoder) charge(at int, items, size int64) error {
	d.items += items
	d.size += size
	if d.maxItems > 0 && d.items > d.maxItems {
		return d.fail(at, &action.LimitError{What: "items", Size: d.items, Limit: d.maxItems}, "")
	}
	if d.size > d.maxSize {
		return d.fail(at, &action.LimitError{What: "decoded bytes", Size: d.size, Limit: d.maxSize}, "")
	}
	return nil
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

// stringSize returns the decoded size of the contents of a definite string
// of n bytes just read, following the arena as copyString fills it.
func (d *decoder) stringSize(n int) int64 {
	switch {
	case n == 0:
		return 0
	case n > arenaMaxString:
		return allocSize(int64(n))
	case d.free >= n:
		d.free -= n
		return 0
	}
	c := min(arenaChunk, n+len(d.data)-d.off)
	d.free = c - n
	return allocSize(int64(c))
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
// it must be a scalar, and byte strings become Bytes. In check mode it
// returns nil.
func (d *decoder) item(depth int, asKey bool) (any, error) {
	start := d.off
	major, ai, arg, err := d.head()
	if err != nil {
		return nil, err
	}
	switch major {
	case majorUint, majorNegint:
		if ai == indefinite {
			return nil, d.fail(start, ErrMalformed, "indefinite-length integer")
		}
		if err := d.charge(start, 1, sizeBoxInt); err != nil || d.check {
			return nil, err
		}
		switch {
		case major == majorNegint && arg <= math.MaxInt64:
			return ^int64(arg), nil
		case major == majorNegint:
			return NegInt(arg), nil
		case arg <= math.MaxInt64:
			return int64(arg), nil
		}
		return arg, nil
	case majorBytes, majorText:
		if major == majorText && d.noText {
			return nil, d.fail(start, ErrTextString, "")
		}
		if ai == indefinite {
			if err := d.charge(start, 1, sizeBoxSlice); err != nil {
				return nil, err
			}
			p, err := d.chunks(start, major)
			switch {
			case err != nil || d.check:
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
		if err := d.charge(start, 1, sizeBoxSlice+d.stringSize(len(p))); err != nil || d.check {
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
			return nil, d.fail(start, depthLimit(depth+1, d.maxDepth), "")
		}
		return d.array(start, ai, arg, depth)
	case majorMap:
		if asKey {
			return nil, d.fail(start, ErrInvalidKey, "map")
		}
		if depth >= d.maxDepth {
			return nil, d.fail(start, depthLimit(depth+1, d.maxDepth), "")
		}
		return d.mapItem(start, ai, arg, depth)
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
		case 20, 21, 22:
			if err := d.charge(start, 1, 0); err != nil || d.check {
				return nil, err
			}
			if ai == 22 {
				return nil, nil
			}
			return ai == 21, nil
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
// The result grows by doubling, and a text string is copied once more, so
// each chunk is charged four times its length.
func (d *decoder) chunks(start int, major byte) ([]byte, error) {
	var p []byte
	if !d.check {
		p = []byte{}
	}
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
		if err := d.charge(cstart, 0, 4*allocSize(int64(n))); err != nil {
			return nil, err
		}
		if !d.check {
			p = grow(p, len(c))
			p = append(p, c...)
		}
		d.off += int(n)
	}
}

// grow returns s with room for n more elements, doubling its capacity when
// it must grow, so that everything a growing slice allocates adds up to at
// most twice its final size (append grows by less than that, and would
// allocate more in all).
func grow[T any](s []T, n int) []T {
	if len(s)+n <= cap(s) {
		return s
	}
	t := make([]T, len(s), max(2*cap(s), len(s)+n, 4))
	copy(t, s)
	return t
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

func (d *decoder) array(start int, ai byte, n uint64, depth int) (any, error) {
	if ai == indefinite {
		if err := d.charge(start, 1, sizeBoxSlice); err != nil {
			return nil, err
		}
		var out []any
		if !d.check {
			out = []any{}
		}
		for !d.atBreak() {
			// Each element's slot, in a slice grown by doubling.
			if err := d.charge(d.off, 0, 2*allocSize(sizeSlot)); err != nil {
				return nil, err
			}
			v, err := d.item(depth+1, false)
			if err != nil {
				return nil, err
			}
			if !d.check {
				out = append(grow(out, 1), v)
			}
		}
		if d.check {
			return nil, nil
		}
		return out, nil
	}
	c := d.capFor(n, 1)
	if err := d.charge(start, 1, sizeBoxSlice+allocSize(int64(c)*sizeSlot)); err != nil {
		return nil, err
	}
	var out []any
	if !d.check {
		out = make([]any, 0, c)
	}
	for range n {
		v, err := d.item(depth+1, false)
		if err != nil {
			return nil, err
		}
		if !d.check {
			out = append(out, v)
		}
	}
	if d.check {
		return nil, nil
	}
	return out, nil
}

func (d *decoder) mapItem(start int, ai byte, n uint64, depth int) (any, error) {
	var m map[any]any
	if ai == indefinite {
		// Without a size hint the table grows by doubling as entries arrive.
		if err := d.charge(start, 1, sizeMap); err != nil {
			return nil, err
		}
		if !d.check {
			m = make(map[any]any)
		}
	} else {
		c := d.capFor(n, 2)
		if err := d.charge(start, 1, sizeMap+int64(c)*sizeMapEntry); err != nil {
			return nil, err
		}
		if !d.check {
			m = make(map[any]any, c)
		}
	}
	for i := uint64(0); ; i++ {
		if ai == indefinite {
			if d.atBreak() {
				break
			}
			if err := d.charge(d.off, 0, 2*sizeMapEntry); err != nil {
				return nil, err
			}
		} else if i == n {
			break
		}
		k, err := d.item(depth+1, true)
		if err != nil {
			return nil, err
		}
		v, err := d.item(depth+1, false)
		if err != nil {
			return nil, err
		}
		if !d.check {
			m[k] = v
		}
	}
	if d.check {
		return nil, nil
	}
	return m, nil
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
		return nil, d.fail(start, depthLimit(depth+1, d.maxDepth), "")
	}
	c := 0
	if ai != indefinite {
		c = d.capFor(n, 1)
	}
	// The sort entries and the Set: charged for c elements now, and for each
	// element beyond them as it comes (in slices grown by doubling).
	if err := d.charge(start, 1, sizeBoxSlice+allocSize(int64(c)*(sizeSetEntry+sizeSlot))); err != nil {
		return nil, err
	}
	var ents []entry
	if !d.check {
		ents = make([]entry, 0, c)
	}
	for i := uint64(0); ; i++ {
		if ai == indefinite {
			if d.atBreak() {
				break
			}
			if err := d.charge(d.off, 0, 2*allocSize(sizeSetEntry+sizeSlot)); err != nil {
				return nil, err
			}
		} else if i == n {
			break
		}
		v, err := d.item(depth+1, true)
		if err != nil {
			return nil, err
		}
		if d.check {
			continue
		}
		k, err := keyOf(v)
		if err != nil {
			return nil, err
		}
		ents = append(grow(ents, 1), entry{key: k, value: v})
	}
	if d.check {
		return nil, nil
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
