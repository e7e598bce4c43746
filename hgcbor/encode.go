package hgcbor

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bytes is a CBOR byte string, Python's bytes. Unlike []byte it is
// comparable, so it can be a map key or a set element: decoded byte-string
// map keys and set elements are Bytes.
type Bytes string

// Set is a Python set, encoded as semantic tag 258 (finite set) over an
// array. Elements must be scalars: nil, bool, integers, Bytes, []byte or
// string. The encoder writes them in Mercurial's order whatever their order
// in the slice, and rejects duplicates; the decoder returns them sorted in
// that order, duplicates dropped.
type Set []any

// NegInt is the negative integer -1-n. It holds the integers in
// [-2^64, MinInt64) that no Go integer type can, which is how the decoder
// returns them; the encoder accepts any NegInt.
type NegInt uint64

// Big returns the value of n.
func (n NegInt) Big() *big.Int {
	x := new(big.Int).SetUint64(uint64(n))
	return x.Not(x)
}

// String returns n in decimal.
func (n NegInt) String() string { return n.Big().String() }

// RawMessage is pre-encoded CBOR, appended verbatim by the encoder. The
// encoder does not check it; it must be exactly one well-formed item.
type RawMessage []byte

// CBOR major types, for AppendHead.
const (
	MajorUnsigned byte = 0 // unsigned integer
	MajorNegative byte = 1 // negative integer -1-arg
	MajorBytes    byte = 2 // byte string of arg bytes
	MajorText     byte = 3 // text string of arg bytes
	MajorArray    byte = 4 // array of arg items
	MajorMap      byte = 5 // map of arg pairs
	MajorTag      byte = 6 // semantic tag arg
	MajorSimple   byte = 7 // simple values, floats, break
)

const (
	majorUint    = 0
	majorNegint  = 1
	majorBytes   = 2
	majorText    = 3
	majorArray   = 4
	majorMap     = 5
	majorTag     = 6
	majorSpecial = 7

	tagFiniteSet = 258
	indefinite   = 31
	breakByte    = 0xff
)

// Marshal returns the CBOR encoding of v, byte-for-byte what Mercurial's
// cborutil.streamencode produces for the equivalent Python value.
func Marshal(v any) ([]byte, error) {
	return Append(nil, v)
}

// Append appends the CBOR encoding of v to dst and returns the extended
// slice. On error it returns dst unchanged in length (bytes past len(dst) in
// its capacity may have been written). It does not retain v or dst.
func Append(dst []byte, v any) ([]byte, error) {
	n := len(dst)
	out, err := appendValue(dst, v, 0)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// maxEncodeDepth bounds recursion on cyclic or absurdly deep values.
const maxEncodeDepth = 1000

// AppendHead appends the head of an item of major type major (MajorUnsigned
// … MajorSimple) with argument arg: the minimal-length encoding cborutil's
// encodelength writes. With it a caller can stream a map or array whose
// items it encodes itself.
func AppendHead(dst []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(dst, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(dst, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return append(dst, m|25, byte(arg>>8), byte(arg))
	case arg <= math.MaxUint32:
		return append(dst, m|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	default:
		return append(dst, m|27, byte(arg>>56), byte(arg>>48), byte(arg>>40), byte(arg>>32),
			byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	}
}

// AppendBytes appends p as a definite-length byte string.
func AppendBytes(dst, p []byte) []byte {
	dst = AppendHead(dst, majorBytes, uint64(len(p)))
	return append(dst, p...)
}

// AppendBeginIndefiniteBytes appends the start of an indefinite-length byte
// string, as cborutil.streamencodebytestringfromiter does. Follow it with
// chunks written by AppendBytes and then AppendBreak.
func AppendBeginIndefiniteBytes(dst []byte) []byte { return append(dst, majorBytes<<5|indefinite) }

// AppendBeginIndefiniteArray appends the start of an indefinite-length array
// (cborutil.streamencodearrayfromiter). Follow it with items and AppendBreak.
func AppendBeginIndefiniteArray(dst []byte) []byte { return append(dst, majorArray<<5|indefinite) }

// AppendBeginIndefiniteMap appends the start of an indefinite-length map
// (cborutil.streamencodemapfromiter). Follow it with keys and values, in the
// caller's order, and AppendBreak.
func AppendBeginIndefiniteMap(dst []byte) []byte { return append(dst, majorMap<<5|indefinite) }

// AppendBreak appends the break byte that ends an indefinite-length item.
func AppendBreak(dst []byte) []byte { return append(dst, breakByte) }

func appendInt64(dst []byte, v int64) []byte {
	if v < 0 {
		return AppendHead(dst, majorNegint, uint64(^v))
	}
	return AppendHead(dst, majorUint, uint64(v))
}

func appendText(dst []byte, v any, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return dst, encErr(v, ErrInvalidUTF8, "")
	}
	dst = AppendHead(dst, majorText, uint64(len(s)))
	return append(dst, s...), nil
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxEncodeDepth {
		return dst, encErr(v, depthLimit(depth, maxEncodeDepth), "")
	}
	switch x := v.(type) {
	case nil:
		return append(dst, 0xf6), nil
	case bool:
		if x {
			return append(dst, 0xf5), nil
		}
		return append(dst, 0xf4), nil
	case Bytes:
		dst = AppendHead(dst, majorBytes, uint64(len(x)))
		return append(dst, x...), nil
	case []byte:
		return AppendBytes(dst, x), nil
	case string:
		return appendText(dst, v, x)
	case int:
		return appendInt64(dst, int64(x)), nil
	case int64:
		return appendInt64(dst, x), nil
	case int32:
		return appendInt64(dst, int64(x)), nil
	case int16:
		return appendInt64(dst, int64(x)), nil
	case int8:
		return appendInt64(dst, int64(x)), nil
	case uint:
		return AppendHead(dst, majorUint, uint64(x)), nil
	case uint64:
		return AppendHead(dst, majorUint, x), nil
	case uint32:
		return AppendHead(dst, majorUint, uint64(x)), nil
	case uint16:
		return AppendHead(dst, majorUint, uint64(x)), nil
	case uint8:
		return AppendHead(dst, majorUint, uint64(x)), nil
	case uintptr:
		return AppendHead(dst, majorUint, uint64(x)), nil
	case *big.Int:
		if x == nil {
			return append(dst, 0xf6), nil
		}
		k, err := bigKey(v, x)
		if err != nil {
			return dst, err
		}
		return appendIntKey(dst, &k), nil
	case NegInt:
		return AppendHead(dst, majorNegint, uint64(x)), nil
	case RawMessage:
		return append(dst, x...), nil
	case []any:
		dst = AppendHead(dst, majorArray, uint64(len(x)))
		var err error
		for _, e := range x {
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case map[any]any:
		return appendAnyMap(dst, x, depth)
	case map[Bytes]any:
		return appendBytesMap(dst, x, depth)
	case map[string]any:
		return appendTextMap(dst, x, depth)
	case Set:
		return appendSet(dst, x)
	}
	return appendReflect(dst, v, reflect.ValueOf(v), depth)
}

// entry is a map entry or set element with its sort key.
type entry struct {
	key   sortKey
	value any
}

// smallMap is how many entries are sorted without a heap allocation.
const smallMap = 8

func sortEntries(ents []entry) {
	if len(ents) <= smallMap {
		for i := 1; i < len(ents); i++ {
			for j := i; j > 0 && compareKeys(&ents[j], &ents[j-1]) < 0; j-- {
				ents[j], ents[j-1] = ents[j-1], ents[j]
			}
		}
		return
	}
	slices.SortFunc(ents, func(a, b entry) int { return compareKeys(&a, &b) })
}

func compareKeys(a, b *entry) int { return a.key.compare(&b.key) }

// checkDistinct reports the first pair of sorted entries with equal keys.
func checkDistinct(ents []entry, what any) error {
	for i := 1; i < len(ents); i++ {
		if ents[i].key.compare(&ents[i-1].key) == 0 {
			return encErr(what, ErrDuplicateKey, ents[i].key.String())
		}
	}
	return nil
}

func appendAnyMap(dst []byte, m map[any]any, depth int) ([]byte, error) {
	var stack [smallMap]entry
	ents := stack[:0]
	if len(m) > smallMap {
		ents = make([]entry, 0, len(m))
	}
	for k, v := range m {
		sk, err := keyOf(k)
		if err != nil {
			return dst, err
		}
		ents = append(ents, entry{key: sk, value: v})
	}
	return appendMapEntries(dst, ents, m, depth)
}

func appendMapEntries(dst []byte, ents []entry, m any, depth int) ([]byte, error) {
	sortEntries(ents)
	if err := checkDistinct(ents, m); err != nil {
		return dst, err
	}
	dst = AppendHead(dst, majorMap, uint64(len(ents)))
	var err error
	for i := range ents {
		dst = ents[i].key.appendTo(dst)
		if dst, err = appendValue(dst, ents[i].value, depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// stringEntry is an entry of a map whose keys are all byte strings or all
// text strings: sorting is plain string comparison and keys cannot collide.
type stringEntry struct {
	k string
	v any
}

func appendBytesMap(dst []byte, m map[Bytes]any, depth int) ([]byte, error) {
	var stack [smallMap]stringEntry
	ents := stack[:0]
	if len(m) > smallMap {
		ents = make([]stringEntry, 0, len(m))
	}
	for k, v := range m {
		ents = append(ents, stringEntry{string(k), v})
	}
	return appendStringEntries(dst, ents, majorBytes, depth)
}

func appendTextMap(dst []byte, m map[string]any, depth int) ([]byte, error) {
	var stack [smallMap]stringEntry
	ents := stack[:0]
	if len(m) > smallMap {
		ents = make([]stringEntry, 0, len(m))
	}
	for k, v := range m {
		if !utf8.ValidString(k) {
			return dst, encErr(m, ErrInvalidUTF8, "map key")
		}
		ents = append(ents, stringEntry{k, v})
	}
	return appendStringEntries(dst, ents, majorText, depth)
}

func appendStringEntries(dst []byte, ents []stringEntry, major byte, depth int) ([]byte, error) {
	if len(ents) <= smallMap {
		for i := 1; i < len(ents); i++ {
			for j := i; j > 0 && ents[j].k < ents[j-1].k; j-- {
				ents[j], ents[j-1] = ents[j-1], ents[j]
			}
		}
	} else {
		slices.SortFunc(ents, func(a, b stringEntry) int { return strings.Compare(a.k, b.k) })
	}
	dst = AppendHead(dst, majorMap, uint64(len(ents)))
	var err error
	for i := range ents {
		dst = AppendHead(dst, major, uint64(len(ents[i].k)))
		dst = append(dst, ents[i].k...)
		if dst, err = appendValue(dst, ents[i].v, depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendSet(dst []byte, s Set) ([]byte, error) {
	var stack [smallMap]entry
	ents := stack[:0]
	if len(s) > smallMap {
		ents = make([]entry, 0, len(s))
	}
	for _, e := range s {
		sk, err := keyOf(e)
		if err != nil {
			return dst, err
		}
		ents = append(ents, entry{key: sk})
	}
	sortEntries(ents)
	if err := checkDistinct(ents, s); err != nil {
		return dst, err
	}
	dst = AppendHead(dst, majorTag, tagFiniteSet)
	dst = AppendHead(dst, majorArray, uint64(len(ents)))
	for i := range ents {
		dst = ents[i].key.appendTo(dst)
	}
	return dst, nil
}

// appendReflect handles named types and collections of other element types.
func appendReflect(dst []byte, v any, rv reflect.Value, depth int) ([]byte, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return appendValue(dst, rv.Bool(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt64(dst, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return AppendHead(dst, majorUint, rv.Uint()), nil
	case reflect.String:
		return appendText(dst, v, rv.String())
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return append(dst, 0xf6), nil
		}
		return appendValue(dst, rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() && rv.Type().Elem().Kind() != reflect.Uint8 {
			return AppendHead(dst, majorArray, 0), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			dst = AppendHead(dst, majorBytes, uint64(rv.Len()))
			if rv.Kind() == reflect.Slice {
				return append(dst, rv.Bytes()...), nil
			}
			for i := range rv.Len() {
				dst = append(dst, byte(rv.Index(i).Uint()))
			}
			return dst, nil
		}
		dst = AppendHead(dst, majorArray, uint64(rv.Len()))
		var err error
		for i := range rv.Len() {
			if dst, err = appendValue(dst, rv.Index(i).Interface(), depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case reflect.Map:
		ents := make([]entry, 0, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			sk, err := keyOf(it.Key().Interface())
			if err != nil {
				return dst, err
			}
			ents = append(ents, entry{key: sk, value: it.Value().Interface()})
		}
		return appendMapEntries(dst, ents, v, depth)
	}
	return dst, encErr(v, ErrUnsupported, fmt.Sprint(v))
}
