package hgcbor

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"unicode/utf8"
)

// maxLiteralDepth bounds nesting in a cbor: payload literal. CPython's
// parser gives up at 200 nested brackets; this is lower because tests never
// come close and the parser recurses.
const maxLiteralDepth = 100

// ParsePythonLiteral evaluates src the way Mercurial's evalpythonliteral
// does (ast.literal_eval of src decoded as Latin-1), restricted to what
// cborutil can encode, and returns the value in this package's value model:
// b'…' → Bytes, '…' → string, int → int64/uint64/NegInt
// (*big.Int beyond), True/False → bool, None → nil, list and tuple → []any,
// dict → map[any]any, set → Set. It is the inverse of PythonLiteral, and
// what frame.ParseHuman runs on a "cbor:" payload. An error names the
// problem and its offset in src.
func ParsePythonLiteral(src string) (any, error) {
	v, err := parsePythonLiteral(src)
	if err != nil {
		return nil, fmt.Errorf("hgcbor: python literal: %w", err)
	}
	return v, nil
}

func parsePythonLiteral(src string) (any, error) {
	if strings.IndexByte(src, 0) >= 0 {
		return nil, errors.New("source contains a NUL byte")
	}
	p := &litParser{s: strings.TrimLeft(src, " \t")}
	p.skipBlankLines()
	v, err := p.exprList(true)
	if err != nil {
		return nil, err
	}
	v = finish(v)
	p.skipSpace()
	if p.pos < len(p.s) && (p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.skipBlankLines()
	}
	if p.pos < len(p.s) {
		return nil, p.errorf("unexpected %s", p.describe())
	}
	return v, nil
}

type litParser struct {
	s     string
	pos   int
	depth int // open brackets: inside them newlines are whitespace
}

func (p *litParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *litParser) describe() string {
	if p.pos >= len(p.s) {
		return "end of input"
	}
	end := min(p.pos+10, len(p.s))
	return fmt.Sprintf("%q", p.s[p.pos:end])
}

// skipSpace skips what separates tokens: spaces, tabs, form feeds,
// backslash-newline continuations, and inside brackets also newlines and
// comments. Outside brackets a comment runs to the end of the line.
func (p *litParser) skipSpace() {
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == ' ' || c == '\t' || c == '\f':
			p.pos++
		case c == '\\' && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '\n' || p.s[p.pos+1] == '\r'):
			p.pos += 2
			if p.s[p.pos-1] == '\r' && p.pos < len(p.s) && p.s[p.pos] == '\n' {
				p.pos++
			}
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' && p.s[p.pos] != '\r' {
				p.pos++
			}
		case (c == '\n' || c == '\r') && p.depth > 0:
			p.pos++
		default:
			return
		}
	}
}

// skipBlankLines skips whitespace, comments and newlines, as the tokenizer
// does before the first and after the last token.
func (p *litParser) skipBlankLines() {
	for {
		p.skipSpace()
		if p.pos < len(p.s) && (p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
			p.pos++
			continue
		}
		return
	}
}

func (p *litParser) peek() byte {
	p.skipSpace()
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

// exprList parses "expr, expr, …": several expressions (or one with a
// trailing comma) make a tuple. top says whether an empty list is an error.
func (p *litParser) exprList(top bool) (any, error) {
	first, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.peek() != ',' {
		return first, nil
	}
	items := []any{first}
	for p.peek() == ',' {
		p.pos++
		c := p.peek()
		if c == 0 || c == ')' || c == '\n' || c == '\r' || (top && c == '#') {
			break
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	return items, nil
}

func (p *litParser) expr() (any, error) {
	c := p.peek()
	if c == '+' || c == '-' {
		at := p.pos
		p.pos++
		v, err := p.atom()
		if err != nil {
			return nil, err
		}
		n, ok := v.(*big.Int)
		if !ok {
			// Like ast.literal_eval: one sign, on a number ("-(-1)" and
			// "-True" are not literals).
			p.pos = at
			return nil, p.errorf("unary %c applies only to a number", c)
		}
		if c == '-' {
			n = new(big.Int).Neg(n)
		}
		return signedInt{n}, nil
	}
	return p.atom()
}

// signedInt is a number with a unary sign, which literal_eval does not
// allow to take another sign.
type signedInt struct{ n *big.Int }

// finish converts the parser's intermediate values (ints as *big.Int) into
// hgcbor's value model.
func finishInt(n *big.Int) any {
	switch {
	case n.IsInt64():
		return n.Int64()
	case n.IsUint64():
		return n.Uint64()
	case n.Sign() < 0:
		m := new(big.Int).Not(n) // -1-n
		if m.IsUint64() {
			return NegInt(m.Uint64())
		}
	}
	return n
}

func finish(v any) any {
	switch x := v.(type) {
	case *big.Int:
		return finishInt(x)
	case signedInt:
		return finishInt(x.n)
	case []any:
		for i := range x {
			x[i] = finish(x[i])
		}
	case map[any]any:
		// Keys are already final (see keyIdentity).
		for k, e := range x {
			x[k] = finish(e)
		}
	}
	return v
}

func (p *litParser) atom() (any, error) {
	c := p.peek()
	switch {
	case c == 0:
		return nil, p.errorf("unexpected end of input")
	case c == '(':
		return p.group()
	case c == '[':
		return p.list()
	case c == '{':
		return p.braces()
	case c >= '0' && c <= '9', c == '.' && p.pos+1 < len(p.s) && p.s[p.pos+1] >= '0' && p.s[p.pos+1] <= '9':
		return p.number()
	case c == '\'' || c == '"':
		return p.strings()
	case isIdentStart(c):
		start := p.pos
		for p.pos < len(p.s) && isIdentChar(p.s[p.pos]) {
			p.pos++
		}
		word := p.s[start:p.pos]
		if p.pos < len(p.s) && (p.s[p.pos] == '\'' || p.s[p.pos] == '"') && isStringPrefix(word) {
			p.pos = start
			return p.strings()
		}
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		case "set":
			if p.peek() == '(' {
				p.pos++
				p.depth++
				if p.peek() == ')' {
					p.pos++
					p.depth--
					return Set{}, nil
				}
			}
			return nil, p.errorf("only set() is a literal call")
		}
		p.pos = start
		return nil, p.errorf("name %q is not a literal", word)
	case c == '.' && strings.HasPrefix(p.s[p.pos:], "..."):
		return nil, p.errorf("Ellipsis cannot be encoded to CBOR")
	}
	return nil, p.errorf("unexpected %s", p.describe())
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' }

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "br", "rb", "f", "fr", "rf":
		return true
	}
	return false
}

func (p *litParser) open() error {
	p.depth++
	if p.depth > maxLiteralDepth {
		return p.errorf("brackets nested deeper than %d", maxLiteralDepth)
	}
	p.pos++
	return nil
}

func (p *litParser) close(want byte) error {
	if p.peek() != want {
		return p.errorf("expected %q, found %s", want, p.describe())
	}
	p.pos++
	p.depth--
	return nil
}

// group parses "( … )": the empty tuple, a parenthesized expression, or a
// tuple.
func (p *litParser) group() (any, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	if p.peek() == ')' {
		p.pos++
		p.depth--
		return []any{}, nil
	}
	v, err := p.exprList(false)
	if err != nil {
		return nil, err
	}
	return v, p.close(')')
}

func (p *litParser) list() (any, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	items := []any{}
	for p.peek() != ']' {
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		if p.peek() != ',' {
			break
		}
		p.pos++
	}
	return items, p.close(']')
}

// keyIdentity is the equality Python applies to dict keys and set elements
// among the values a literal can hold: True == 1 and False == 0, bytes and
// str never equal. Collections are unhashable (tuples are hashable in Python,
// but hgcbor cannot hold them as keys).
func keyIdentity(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "n", nil
	case bool:
		if x {
			return "i1", nil
		}
		return "i0", nil
	case *big.Int:
		return "i" + x.String(), nil
	case signedInt:
		return "i" + x.n.String(), nil
	case Bytes:
		return "b" + string(x), nil
	case string:
		return "s" + x, nil
	case []any:
		return "", errors.New("lists and tuples cannot be dict keys or set elements here")
	}
	return "", fmt.Errorf("unhashable %T", v)
}

// braces parses a dict or a set.
func (p *litParser) braces() (any, error) {
	if err := p.open(); err != nil {
		return nil, err
	}
	if p.peek() == '}' {
		p.pos++
		p.depth--
		return map[any]any{}, nil
	}
	if p.peek() == '*' {
		return nil, p.errorf("unpacking is not a literal")
	}
	first, err := p.expr()
	if err != nil {
		return nil, err
	}
	seen := map[string]any{} // identity → the key first inserted
	if p.peek() == ':' {
		m := map[any]any{}
		k := first
		for {
			p.pos++ // ':'
			at := p.pos
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			id, err := keyIdentity(k)
			if err != nil {
				p.pos = at
				return nil, p.errorf("%v", err)
			}
			if prev, ok := seen[id]; ok {
				k = prev // Python keeps the first key, with the last value
			} else {
				seen[id] = k
			}
			m[finishKey(k)] = v
			if p.peek() != ',' {
				break
			}
			p.pos++
			if p.peek() == '}' {
				break
			}
			if k, err = p.expr(); err != nil {
				return nil, err
			}
			if p.peek() != ':' {
				return nil, p.errorf("expected ':' in dict, found %s", p.describe())
			}
		}
		return m, p.close('}')
	}
	set := Set{}
	e := first
	for {
		id, err := keyIdentity(e)
		if err != nil {
			return nil, p.errorf("%v", err)
		}
		if _, ok := seen[id]; !ok {
			seen[id] = e
			set = append(set, finishKey(e))
		}
		if p.peek() != ',' {
			break
		}
		p.pos++
		if p.peek() == '}' {
			break
		}
		if e, err = p.expr(); err != nil {
			return nil, err
		}
	}
	return set, p.close('}')
}

func finishKey(k any) any {
	switch n := k.(type) {
	case *big.Int:
		return finishInt(n)
	case signedInt:
		return finishInt(n.n)
	}
	return k
}

// number parses an integer literal as Python's tokenizer reads it; floats
// and imaginary numbers are rejected because cborutil cannot encode them.
func (p *litParser) number() (any, error) {
	start := p.pos
	end := start
	for end < len(p.s) && (isIdentChar(p.s[end]) || p.s[end] == '.') {
		end++
	}
	// An exponent sign belongs to the number ("1e+5").
	for end < len(p.s) && (p.s[end] == '+' || p.s[end] == '-') && end > start &&
		(p.s[end-1] == 'e' || p.s[end-1] == 'E') && !strings.ContainsAny(p.s[start:end], "xXbBoO") {
		end++
		for end < len(p.s) && isIdentChar(p.s[end]) {
			end++
		}
	}
	tok := p.s[start:end]
	p.pos = end
	base := 10
	digits := tok
	if len(tok) > 1 && tok[0] == '0' {
		switch tok[1] {
		case 'x', 'X':
			base, digits = 16, tok[2:]
		case 'o', 'O':
			base, digits = 8, tok[2:]
		case 'b', 'B':
			base, digits = 2, tok[2:]
		}
	}
	if base == 10 && strings.ContainsAny(tok, ".eEjJ") {
		p.pos = start
		return nil, p.errorf("number %q is not an integer; CBOR floats are not supported", tok)
	}
	if base != 10 {
		// Prefixed literals allow one underscore after the prefix.
		digits = strings.TrimPrefix(digits, "_")
	}
	clean, ok := pyDigits(digits, base)
	if !ok {
		p.pos = start
		return nil, p.errorf("invalid integer literal %q", tok)
	}
	if base == 10 && len(clean) > 1 && clean[0] == '0' && strings.Trim(clean, "0") != "" {
		p.pos = start
		return nil, p.errorf("leading zeros in decimal integer literal %q", tok)
	}
	n, _ := new(big.Int).SetString(clean, base)
	return n, nil
}

// pyDigits checks digits of base with single underscores between them and
// returns them without underscores.
func pyDigits(s string, base int) (string, bool) {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return "", false
	}
	clean := strings.ReplaceAll(s, "_", "")
	for i := 0; i < len(clean); i++ {
		d := digitVal(clean[i])
		if d >= base {
			return "", false
		}
	}
	return clean, true
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return math.MaxInt
}

// strings parses one or more adjacent string literals, which Python
// concatenates; bytes and str cannot be mixed.
func (p *litParser) strings() (any, error) {
	var out strings.Builder
	kind := -1 // 0 str, 1 bytes
	for {
		c := p.peek()
		start := p.pos
		prefix := ""
		if isIdentStart(c) {
			for p.pos < len(p.s) && isIdentChar(p.s[p.pos]) {
				p.pos++
			}
			prefix = strings.ToLower(p.s[start:p.pos])
			if !isStringPrefix(prefix) || p.pos >= len(p.s) || (p.s[p.pos] != '\'' && p.s[p.pos] != '"') {
				p.pos = start
				break
			}
		} else if c != '\'' && c != '"' {
			break
		}
		if strings.Contains(prefix, "f") {
			p.pos = start
			return nil, p.errorf("f-strings are not literals")
		}
		isBytes := strings.Contains(prefix, "b")
		k := 0
		if isBytes {
			k = 1
		}
		if kind >= 0 && kind != k {
			p.pos = start
			return nil, p.errorf("cannot mix bytes and nonbytes literals")
		}
		kind = k
		if err := p.stringBody(&out, isBytes, strings.Contains(prefix, "r")); err != nil {
			return nil, err
		}
	}
	if kind == 1 {
		return Bytes(out.String()), nil
	}
	return out.String(), nil
}

// stringBody parses one quoted literal at p.pos and appends its value:
// bytes as they are, str as UTF-8.
func (p *litParser) stringBody(out *strings.Builder, isBytes, raw bool) error {
	start := p.pos
	q := p.s[p.pos]
	quotes := `"""`
	if q == '\'' {
		quotes = "'''"
	}
	triple := strings.HasPrefix(p.s[p.pos:], quotes)
	if triple {
		p.pos += 3
	} else {
		p.pos++
	}
	for {
		if p.pos >= len(p.s) {
			p.pos = start
			return p.errorf("unterminated string literal")
		}
		c := p.s[p.pos]
		switch {
		case c == q && (!triple || strings.HasPrefix(p.s[p.pos:], quotes)):
			if triple {
				p.pos += 3
			} else {
				p.pos++
			}
			return nil
		case (c == '\n' || c == '\r') && !triple:
			p.pos = start
			return p.errorf("unterminated string literal")
		case c >= 0x80:
			if isBytes {
				return p.errorf("bytes can only contain ASCII literal characters")
			}
			out.WriteRune(rune(c)) // the source is read as Latin-1
			p.pos++
		case c == '\\':
			if p.pos+1 >= len(p.s) {
				p.pos = start
				return p.errorf("unterminated string literal")
			}
			if raw {
				// The backslash stays and protects the next character.
				out.WriteByte('\\')
				n := p.s[p.pos+1]
				if n >= 0x80 {
					if isBytes {
						return p.errorf("bytes can only contain ASCII literal characters")
					}
					out.WriteRune(rune(n))
				} else {
					out.WriteByte(n)
				}
				p.pos += 2
				continue
			}
			if err := p.escape(out, isBytes); err != nil {
				return err
			}
		default:
			if c == '\r' { // newlines in triple-quoted strings read as \n
				out.WriteByte('\n')
				p.pos++
				if p.pos < len(p.s) && p.s[p.pos] == '\n' {
					p.pos++
				}
				continue
			}
			out.WriteByte(c)
			p.pos++
		}
	}
}

var simpleEscapes = map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'a': 7, 'b': 8, 'f': 12, 'n': 10, 'r': 13, 't': 9, 'v': 11}

// escape decodes the escape sequence at p.pos (a backslash).
func (p *litParser) escape(out *strings.Builder, isBytes bool) error {
	at := p.pos
	p.pos++
	c := p.s[p.pos]
	p.pos++
	if v, ok := simpleEscapes[c]; ok {
		out.WriteByte(v)
		return nil
	}
	switch {
	case c == '\n':
		return nil
	case c == '\r':
		if p.pos < len(p.s) && p.s[p.pos] == '\n' {
			p.pos++
		}
		return nil
	case c >= '0' && c <= '7':
		v := int(c - '0')
		for i := 0; i < 2 && p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '7'; i++ {
			v = v*8 + int(p.s[p.pos]-'0')
			p.pos++
		}
		if isBytes {
			out.WriteByte(byte(v))
		} else {
			out.WriteRune(rune(v))
		}
		return nil
	case c == 'x' || (!isBytes && (c == 'u' || c == 'U')):
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if p.pos+n > len(p.s) {
			p.pos = at
			return p.errorf("truncated \\%c escape", c)
		}
		var v rune
		for i := range n {
			d := digitVal(p.s[p.pos+i])
			if d >= 16 {
				p.pos = at
				return p.errorf("truncated \\%c escape", c)
			}
			v = v*16 + rune(d)
		}
		p.pos += n
		switch {
		case isBytes:
			out.WriteByte(byte(v))
		case v > utf8.MaxRune:
			p.pos = at
			return p.errorf("illegal Unicode character in \\U escape")
		case v >= 0xd800 && v <= 0xdfff:
			p.pos = at
			return p.errorf("surrogate %U cannot be encoded as UTF-8", v)
		default:
			out.WriteRune(v)
		}
		return nil
	case c == 'N' && !isBytes:
		p.pos = at
		return p.errorf("\\N{…} escapes are not supported")
	}
	// Unknown escapes keep their backslash.
	out.WriteByte('\\')
	p.pos--
	return nil
}
