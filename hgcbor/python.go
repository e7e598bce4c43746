package hgcbor

import (
	"fmt"
	"slices"
	"strings"
)

// PythonLiteral renders a value of this package's model as a Python literal,
// the way Mercurial's tests and debug output write values: b'bytes', 'text',
// True/False/None, [lists], {maps} and {sets} (set() when empty). Non-printable
// bytes are escaped as \xNN. Map entries and set elements are sorted by their
// rendering, so the output is deterministic.
//
// The result is accepted back by the "cbor:" payload syntax of
// frame.ParseHuman, which makes it handy for logging decoded payloads and for
// writing expectations in tests.
func PythonLiteral(v any) string {
	var b strings.Builder
	writePython(&b, v)
	return b.String()
}

func writePython(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case []byte:
		b.WriteByte('b')
		writeQuoted(b, string(v))
	case Bytes:
		b.WriteByte('b')
		writeQuoted(b, string(v))
	case string:
		writeQuotedText(b, v)
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writePython(b, x)
		}
		b.WriteByte(']')
	case Set:
		if len(v) == 0 {
			b.WriteString("set()")
			return
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = PythonLiteral(x)
		}
		writeSorted(b, parts)
	case map[any]any:
		parts := make([]string, 0, len(v))
		for k, x := range v {
			parts = append(parts, PythonLiteral(k)+": "+PythonLiteral(x))
		}
		writeSorted(b, parts)
	default:
		fmt.Fprint(b, v) // integers, NegInt
	}
}

func writeSorted(b *strings.Builder, parts []string) {
	slices.Sort(parts)
	b.WriteByte('{')
	b.WriteString(strings.Join(parts, ", "))
	b.WriteByte('}')
}

// writeQuotedText writes s, text, as a Python str literal: like
// writeQuoted, but escaping code points rather than bytes (in a str
// literal \xe9 is U+00E9, not a byte of its UTF-8 encoding).
func writeQuotedText(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(b, "\\x%02x", r)
		case r < 0x10000:
			fmt.Fprintf(b, "\\u%04x", r)
		default:
			fmt.Fprintf(b, "\\U%08x", r)
		}
	}
	b.WriteByte('\'')
}

// writeQuoted writes s between single quotes, escaping the quote, the
// backslash and every byte outside printable ASCII.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(b, "\\x%02x", c)
		}
	}
	b.WriteByte('\'')
}
