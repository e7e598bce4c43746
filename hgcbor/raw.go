package hgcbor

import "iter"

// Kind is what an encoded item is, in this package's value model.
type Kind uint8

// Kinds of items.
const (
	KindInvalid Kind = iota // not a well-formed item of Mercurial's subset
	KindInt                 // an integer
	KindBytes               // a byte string
	KindText                // a text string
	KindArray               // an array
	KindMap                 // a map
	KindSet                 // a set (tag 258)
	KindBool                // false or true
	KindNull                // null
)

// The methods below read a RawMessage without decoding it: they are the
// decoder's fast path for callers that need a few values out of a large
// item (a command's arguments by name, say) and want no map built for it.
// They expect one well-formed item, as DecodeOptions.Check accepts; given
// anything else they report nothing (KindInvalid, false, no entries) and
// never panic.

// Kind returns the kind of the item m starts with, from its first byte.
func (m RawMessage) Kind() Kind {
	if len(m) == 0 {
		return KindInvalid
	}
	switch major, ai := m[0]>>5, m[0]&0x1f; major {
	case majorUint, majorNegint:
		return KindInt
	case majorBytes:
		return KindBytes
	case majorText:
		return KindText
	case majorArray:
		return KindArray
	case majorMap:
		return KindMap
	case majorTag:
		if len(m) >= 3 && m[0] == 0xd9 && m[1] == 0x01 && m[2] == 0x02 {
			return KindSet
		}
	default:
		switch ai {
		case 20, 21:
			return KindBool
		case 22:
			return KindNull
		}
	}
	return KindInvalid
}

// Bytes returns the contents of m, a byte string: for a definite-length
// one a slice of m itself (no copy), for an indefinite-length one its
// chunks joined in a new slice. ok is false when m is not a byte string.
func (m RawMessage) Bytes() (b []byte, ok bool) {
	if len(m) == 0 || m[0]>>5 != majorBytes {
		return nil, false
	}
	if m[0]&0x1f != indefinite {
		n, h := rawHead(m)
		if h < 0 || n > uint64(len(m)-h) {
			return nil, false
		}
		return m[h : h+int(n)], true
	}
	out := []byte{}
	for off := 1; off < len(m); {
		if m[off] == breakByte {
			return out, true
		}
		if m[off]&0x1f == indefinite {
			return nil, false
		}
		c, ok := RawMessage(m[off:]).Bytes()
		if !ok {
			return nil, false
		}
		out = append(out, c...)
		n, h := rawHead(m[off:])
		off += h + int(n)
	}
	return nil, false
}

// Entries returns the key-value pairs of m, a map, in their encoded order,
// repeated keys included. It yields nothing when m is not a map.
func (m RawMessage) Entries() iter.Seq2[RawMessage, RawMessage] {
	return func(yield func(RawMessage, RawMessage) bool) {
		if len(m) == 0 || m[0]>>5 != majorMap {
			return
		}
		n, off := rawHead(m)
		indef := m[0]&0x1f == indefinite
		if off < 0 {
			return
		}
		for i := uint64(0); indef || i < n; i++ {
			if indef && off < len(m) && m[off] == breakByte {
				return
			}
			k := itemLen(m[off:])
			if k < 0 {
				return
			}
			v := itemLen(m[off+k:])
			if v < 0 {
				return
			}
			if !yield(m[off:off+k:off+k], m[off+k:off+k+v:off+k+v]) {
				return
			}
			off += k + v
		}
	}
}

// Lookup returns the value of the entry of m, a map, whose key is the byte
// string key; the last one when the key is repeated (as decoding keeps
// it). It allocates nothing for definite-length keys.
func (m RawMessage) Lookup(key string) (v RawMessage, ok bool) {
	for k, val := range m.Entries() {
		if kb, isBytes := k.Bytes(); isBytes && string(kb) == key {
			v, ok = val, true
		}
	}
	return v, ok
}

// rawHead reads the head at the start of p: its argument (0 for
// indefinite lengths) and its size, -1 when p is too short.
func rawHead(p []byte) (arg uint64, size int) {
	if len(p) == 0 {
		return 0, -1
	}
	ai := p[0] & 0x1f
	n := 0
	switch {
	case ai < 24:
		return uint64(ai), 1
	case ai == indefinite:
		return 0, 1
	case ai <= 27:
		n = 1 << (ai - 24)
	default:
		return 0, -1
	}
	if len(p) < 1+n {
		return 0, -1
	}
	for _, b := range p[1 : 1+n] {
		arg = arg<<8 | uint64(b)
	}
	return arg, 1 + n
}

// itemLen returns the length of the well-formed item p starts with, or -1
// when p does not start with a complete one. It checks structure only
// (heads, lengths, breaks), not content: Check does both.
func itemLen(p []byte) int {
	// The usual items first: small scalars and short definite strings.
	if len(p) > 0 {
		switch major, ai := p[0]>>5, p[0]&0x1f; {
		case ai < 24 && (major <= majorNegint || major == majorSpecial):
			return 1
		case ai < 24 && (major == majorBytes || major == majorText):
			if n := 1 + int(ai); n <= len(p) {
				return n
			}
			return -1
		}
	}
	const open = ^uint64(0) // an indefinite-length item: ends at a break
	var buf [16]uint64
	stack := buf[:0] // items still expected by each open item, innermost last
	off := 0
	for {
		if off >= len(p) {
			return -1
		}
		if p[off] == breakByte {
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return -1
			}
			off++
			stack = stack[:len(stack)-1]
		} else {
			arg, h := rawHead(p[off:])
			if h < 0 {
				return -1
			}
			major, indef := p[off]>>5, p[off]&0x1f == indefinite
			off += h
			var items uint64 // items this one contains
			switch major {
			case majorBytes, majorText:
				if !indef {
					if arg > uint64(len(p)-off) {
						return -1
					}
					off += int(arg)
				}
			case majorArray:
				items = arg
			case majorMap:
				if arg > uint64(len(p)) {
					return -1
				}
				items = 2 * arg
			case majorTag:
				if indef {
					return -1
				}
				items = 1
			case majorSpecial:
				if indef {
					return -1 // a break, handled above
				}
			}
			if indef && major != majorSpecial {
				stack = append(stack, open)
				continue
			}
			if items > 0 {
				if items > uint64(len(p)-off) {
					return -1 // every item takes a byte at least
				}
				stack = append(stack, items)
				continue
			}
		}
		// An item ended: count it against the open ones.
		for {
			if len(stack) == 0 {
				return off
			}
			top := &stack[len(stack)-1]
			if *top == open {
				break
			}
			if *top--; *top > 0 {
				break
			}
			stack = stack[:len(stack)-1]
		}
	}
}
