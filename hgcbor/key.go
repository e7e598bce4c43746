package hgcbor

import (
	"cmp"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// keyClass orders scalar kinds the way Python orders their type names in
// cborutil's _mixedtypesortkey: "NoneType" < "bool" < "bytes" < "int" < "str".
type keyClass uint8

const (
	classNone keyClass = iota
	classBool
	classBytes
	classInt
	classText
)

// sortKey is a map key or set element reduced to what Mercurial sorts by.
// Integers in [-2^64, 2^64) are held as their CBOR head: neg and the
// argument u (the value is -1-u when neg).
type sortKey struct {
	class keyClass
	neg   bool
	u     uint64 // integer argument, or 0/1 for bool
	s     string // bytes or text content
}

func (a *sortKey) compare(b *sortKey) int {
	if a.class != b.class {
		return cmp.Compare(a.class, b.class)
	}
	switch a.class {
	case classBool:
		return cmp.Compare(a.u, b.u)
	case classInt:
		switch {
		case a.neg != b.neg:
			if a.neg {
				return -1
			}
			return 1
		case a.neg:
			return cmp.Compare(b.u, a.u)
		default:
			return cmp.Compare(a.u, b.u)
		}
	case classBytes, classText:
		return strings.Compare(a.s, b.s)
	}
	return 0
}

func (k *sortKey) appendTo(dst []byte) []byte {
	switch k.class {
	case classNone:
		return append(dst, 0xf6)
	case classBool:
		return append(dst, 0xf4+byte(k.u))
	case classInt:
		return appendIntKey(dst, k)
	case classBytes:
		dst = AppendHead(dst, majorBytes, uint64(len(k.s)))
		return append(dst, k.s...)
	default:
		dst = AppendHead(dst, majorText, uint64(len(k.s)))
		return append(dst, k.s...)
	}
}

func appendIntKey(dst []byte, k *sortKey) []byte {
	if k.neg {
		return AppendHead(dst, majorNegint, k.u)
	}
	return AppendHead(dst, majorUint, k.u)
}

// String describes the key in Python syntax, for error messages.
func (k *sortKey) String() string {
	switch k.class {
	case classNone:
		return "None"
	case classBool:
		if k.u == 1 {
			return "True"
		}
		return "False"
	case classInt:
		if k.neg {
			if k.u == 1<<64-1 {
				return "-18446744073709551616"
			}
			return "-" + strconv.FormatUint(k.u+1, 10)
		}
		return strconv.FormatUint(k.u, 10)
	case classBytes:
		return "b" + strconv.Quote(k.s)
	default:
		return strconv.Quote(k.s)
	}
}

func intKey(v int64) sortKey {
	if v < 0 {
		return sortKey{class: classInt, neg: true, u: uint64(^v)}
	}
	return sortKey{class: classInt, u: uint64(v)}
}

var (
	minBig = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 64)) // -2^64
	maxBig = new(big.Int).SetUint64(1<<64 - 1)
)

func bigKey(v any, x *big.Int) (sortKey, error) {
	if x == nil {
		return sortKey{class: classNone}, nil
	}
	if x.Cmp(minBig) < 0 || x.Cmp(maxBig) > 0 {
		return sortKey{}, encErr(v, ErrIntegerRange, x.String())
	}
	if x.Sign() >= 0 {
		return sortKey{class: classInt, u: x.Uint64()}, nil
	}
	// -1-x fits in a uint64.
	var m big.Int
	m.Neg(x)
	m.Sub(&m, big.NewInt(1))
	return sortKey{class: classInt, neg: true, u: m.Uint64()}, nil
}

// keyOf reduces a scalar to its sort key; collections and other types are
// ErrInvalidKey or ErrUnsupported.
func keyOf(v any) (sortKey, error) {
	switch x := v.(type) {
	case nil:
		return sortKey{class: classNone}, nil
	case bool:
		if x {
			return sortKey{class: classBool, u: 1}, nil
		}
		return sortKey{class: classBool}, nil
	case Bytes:
		return sortKey{class: classBytes, s: string(x)}, nil
	case []byte:
		return sortKey{class: classBytes, s: string(x)}, nil
	case string:
		if !utf8.ValidString(x) {
			return sortKey{}, encErr(v, ErrInvalidUTF8, "")
		}
		return sortKey{class: classText, s: x}, nil
	case int:
		return intKey(int64(x)), nil
	case int64:
		return intKey(x), nil
	case int32:
		return intKey(int64(x)), nil
	case int16:
		return intKey(int64(x)), nil
	case int8:
		return intKey(int64(x)), nil
	case uint:
		return sortKey{class: classInt, u: uint64(x)}, nil
	case uint64:
		return sortKey{class: classInt, u: x}, nil
	case uint32:
		return sortKey{class: classInt, u: uint64(x)}, nil
	case uint16:
		return sortKey{class: classInt, u: uint64(x)}, nil
	case uint8:
		return sortKey{class: classInt, u: uint64(x)}, nil
	case uintptr:
		return sortKey{class: classInt, u: uint64(x)}, nil
	case NegInt:
		return sortKey{class: classInt, neg: true, u: uint64(x)}, nil
	case *big.Int:
		return bigKey(v, x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return keyOf(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intKey(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return sortKey{class: classInt, u: rv.Uint()}, nil
	case reflect.String:
		return keyOf(rv.String())
	case reflect.Slice, reflect.Array, reflect.Map:
		return sortKey{}, encErr(v, ErrInvalidKey, "collections cannot be map keys or set elements")
	}
	return sortKey{}, encErr(v, ErrUnsupported, fmt.Sprintf("%v", v))
}
