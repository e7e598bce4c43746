package framing

import (
	"fmt"
	"unicode/utf8"

	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// TextAtom is one piece of text output for people to read: one ui.write()
// in Mercurial's terms, the (formatting, args, labels) tuple its
// createtextoutputframe takes. All three are byte strings on the wire.
type TextAtom struct {
	// Format is the text, with a %s for each of Args. It must be ASCII.
	Format string
	// Args are substituted for the %s in Format. Invalid UTF-8 in them is
	// replaced by U+FFFD, one per maximal invalid subsequence, as Python's
	// decode('utf-8', 'replace') does.
	Args []string
	// Labels name formatters applied when the text is rendered. They must be
	// ASCII.
	Labels []string
}

// TextOutputError reports a text atom Mercurial refuses: a non-ASCII byte in
// its format string or in one of its labels.
type TextOutputError struct {
	Atom   int    // index of the atom
	Field  string // "format" or "label"
	Label  int    // index of the label, when Field is "label"
	Offset int    // offset of the first non-ASCII byte
	Byte   byte   // that byte
}

// Error names the atom, the field (format string or which label), and the
// offending byte with its offset.
func (e *TextOutputError) Error() string {
	field := "format string"
	if e.Field == "label" {
		field = fmt.Sprintf("label %d", e.Label)
	}
	return fmt.Sprintf("framing: text output atom %d: %s has non-ASCII byte 0x%02x at offset %d",
		e.Atom, field, e.Byte, e.Offset)
}

// AppendTextOutput appends a text-output frame carrying atoms (Mercurial's
// createtextoutputframe): a CBOR array with one map per atom, {b'msg':
// format, b'args': [...], b'labels': [...]}, args and labels only when not
// empty. A non-ASCII format string or label is a *TextOutputError; a payload
// over MaxFramePayload an *action.LimitError, since text output is never
// split across frames.
func (s *OutputStream) AppendTextOutput(dst []byte, requestID uint16, atoms []TextAtom) ([]byte, error) {
	// Validate in Mercurial's order: atom by atom, format before labels.
	for i := range atoms {
		if at := nonASCII(atoms[i].Format); at >= 0 {
			return dst, &TextOutputError{Atom: i, Field: "format", Offset: at, Byte: atoms[i].Format[at]}
		}
		for j, l := range atoms[i].Labels {
			if at := nonASCII(l); at >= 0 {
				return dst, &TextOutputError{Atom: i, Field: "label", Label: j, Offset: at, Byte: l[at]}
			}
		}
	}
	p := hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorArray, uint64(len(atoms)))
	for i := range atoms {
		a := &atoms[i]
		keys := 1
		if len(a.Args) > 0 {
			keys++
		}
		if len(a.Labels) > 0 {
			keys++
		}
		// Keys in Mercurial's order: args, labels, msg.
		p = hgcbor.AppendHead(p, hgcbor.MajorMap, uint64(keys))
		if len(a.Args) > 0 {
			p = hgcbor.AppendHead(appendCBORBytes(p, "args"), hgcbor.MajorArray, uint64(len(a.Args)))
			for _, arg := range a.Args {
				p = appendCBORBytesValidUTF8(p, arg)
			}
		}
		if len(a.Labels) > 0 {
			p = hgcbor.AppendHead(appendCBORBytes(p, "labels"), hgcbor.MajorArray, uint64(len(a.Labels)))
			for _, l := range a.Labels {
				p = appendCBORBytes(p, l)
			}
		}
		p = appendCBORBytes(appendCBORBytes(p, "msg"), a.Format)
	}
	s.scratch = p
	if len(p) > s.split {
		return dst, tooLarge(frame.TypeTextOutput, "payload", len(p), s.split)
	}
	return s.AppendFrame(dst, requestID, frame.TypeTextOutput, 0, p, false)
}

// nonASCII returns the offset of the first byte of s over 0x7f, or -1.
func nonASCII(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return i
		}
	}
	return -1
}

// appendCBORBytesValidUTF8 appends s as a CBOR byte string after replacing
// its invalid UTF-8 the way Python's decode('utf-8', 'replace') does.
func appendCBORBytesValidUTF8(dst []byte, s string) []byte {
	if utf8.ValidString(s) {
		return appendCBORBytes(dst, s)
	}
	n := 0 // the replaced length, for the head
	forEachValidUTF8(s, func(piece string) { n += len(piece) })
	dst = hgcbor.AppendHead(dst, hgcbor.MajorBytes, uint64(n))
	forEachValidUTF8(s, func(piece string) { dst = append(dst, piece...) })
	return dst
}

// forEachValidUTF8 calls f with the pieces of s made valid UTF-8: its
// well-formed runs, and U+FFFD for each maximal ill-formed subpart.
func forEachValidUTF8(s string, f func(string)) {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			j += size
		}
		if j > i {
			f(s[i:j])
		}
		if j < len(s) {
			f("\uFFFD")
			j += maximalSubpart(s[j:])
		}
		i = j
	}
}

// maximalSubpart returns the length of the maximal subpart of an ill-formed
// UTF-8 sequence at the start of s (Unicode §3.9, "U+FFFD substitution of
// maximal subparts"): the longest prefix of a well-formed sequence, or 1.
// This is the unit Python replaces with one U+FFFD.
func maximalSubpart(s string) int {
	lo, hi, need := byte(0x80), byte(0xbf), 0
	switch c := s[0]; {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		lo, need = 0xa0, 2
	case c == 0xed:
		hi, need = 0x9f, 2
	case c >= 0xe1 && c <= 0xef:
		need = 2
	case c == 0xf0:
		lo, need = 0x90, 3
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4:
		hi, need = 0x8f, 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(s); n++ {
		if s[n] < lo || s[n] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
	}
	return n
}
