package jsonstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
)

// decodeAll feeds chunks one by one, following the machine rule, then EOF,
// and returns what came out: "v:<value>" per value, "e:<error>" per error.
func decodeAll(t testing.TB, d *Decoder, chunks [][]byte) []string {
	var out []string
	drain := func() bool {
		for {
			v, err := d.Next()
			switch {
			case err == io.EOF:
				return false
			case err != nil:
				out = append(out, "e:"+err.Error())
				var se *SyntaxError
				if !errors.As(err, &se) || se.Truncated {
					return false // terminal
				}
			case v == nil:
				return true
			default:
				require.True(t, json.Valid(v), "delivered invalid JSON %q", v)
				out = append(out, "v:"+string(v))
			}
		}
	}
	for _, c := range chunks {
		// Scribble over the chunk once the decoder says it is done with it,
		// to catch any value still aliasing it.
		d.Feed(c)
		if !drain() {
			return out
		}
		for i := range c {
			c[i] = '#'
		}
	}
	d.FeedEOF()
	drain()
	return out
}

func splitEvery(s string, n int) [][]byte {
	var chunks [][]byte
	for len(s) > 0 {
		k := min(n, len(s))
		chunks = append(chunks, []byte(s[:k]))
		s = s[k:]
	}
	return chunks
}

func TestDecoderStreams(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one object", `{"execute":"qmp_capabilities"}`, []string{`v:{"execute":"qmp_capabilities"}`}},
		{"crlf endings", "{\"return\": {}, \"id\": 1}\r\n{\"event\": \"STOP\"}\r\n",
			[]string{`v:{"return": {}, "id": 1}`, `v:{"event": "STOP"}`}},
		{"back to back", `{"a":1}{"b":[2,3]}[]`, []string{`v:{"a":1}`, `v:{"b":[2,3]}`, `v:[]`}},
		{"pretty printed", "{\n  \"execute\": \"query-status\",\r\n  \"id\"\n: 4\n}\n",
			[]string{"v:{\n  \"execute\": \"query-status\",\r\n  \"id\"\n: 4\n}"}},
		{"braces and escapes in strings", `{"a":"}{\"\\\u00e9]"} {"b":"\/"}`,
			[]string{`v:{"a":"}{\"\\\u00e9]"}`, `v:{"b":"\/"}`}},
		{"scalars at top level", `"str" 123 -0.5e+7 true false null 0`,
			[]string{`v:"str"`, `v:123`, `v:-0.5e+7`, `v:true`, `v:false`, `v:null`, `v:0`}},
		{"numbers in containers", `[1,-2,3.25,4e1,5E-2,0,{"x":-0}]`, []string{`v:[1,-2,3.25,4e1,5E-2,0,{"x":-0}]`}},
		{"number ended by a brace", `1{"a":2}`, []string{`v:1`, `v:{"a":2}`}},
		{"whitespace only", " \r\n\t ", nil},
		{"empty containers", `{}[]{ }[ ]`, []string{`v:{}`, `v:[]`, `v:{ }`, `v:[ ]`}},
		{"garbage between messages resyncs at the next brace",
			`{"id":7} junk {"id":8}`,
			[]string{`v:{"id":7}`, "e:jsonstream: json syntax error at offset 9: invalid character 'j' looking for a value", `v:{"id":8}`}},
		{"bad keyword inside an object",
			`{"execute": garbage, "id":1}{"id":2}`,
			[]string{"e:jsonstream: json syntax error at offset 12: invalid character 'g' looking for a value", `v:{"id":2}`}},
		{"mismatched bracket",
			`{"id":3]{"id":4}`,
			[]string{"e:jsonstream: json syntax error at offset 7: invalid character ']' after object member", `v:{"id":4}`}},
		{"new object inside a broken one is kept",
			`{"execute" {"id":5}`,
			[]string{"e:jsonstream: json syntax error at offset 11: invalid character '{' after object key", `v:{"id":5}`}},
		{"raw newline in a string",
			"{\"a\":\"unterminated\n{\"id\":9}",
			[]string{"e:jsonstream: json syntax error at offset 18: control character 0x0a in string", `v:{"id":9}`}},
		{"bad escape", `{"a":"\x"}{"ok":1}`, []string{`e:jsonstream: json syntax error at offset 7: invalid escape 'x' in string`, `v:{"ok":1}`}},
		{"bad unicode escape", `{"a":"\u00zz"}{"ok":1}`, []string{`e:jsonstream: json syntax error at offset 10: invalid character 'z' in \u escape`, `v:{"ok":1}`}},
		{"leading zero", `[01]{"ok":1}`, []string{`e:jsonstream: json syntax error at offset 2: invalid character '1' after array element`, `v:{"ok":1}`}},
		{"bad literal", `[tru]{"ok":1}`, []string{`e:jsonstream: json syntax error at offset 4: invalid character ']' in literal true`, `v:{"ok":1}`}},
		{"stray bytes", "\xff\x00{\"id\":5}", []string{"e:jsonstream: json syntax error at offset 0: invalid character 0xff looking for a value", `v:{"id":5}`}},
		{"trailing comma", `{"a":1,}{"ok":1}`, []string{`e:jsonstream: json syntax error at offset 7: invalid character '}' looking for an object key`, `v:{"ok":1}`}},
		{"truncated at end of input", `{"ok":1}{"execute":`,
			[]string{`v:{"ok":1}`, "e:jsonstream: json syntax error at offset 19: unexpected end of input inside a value"}},
		{"truncated number", `[1,2`, []string{"e:jsonstream: json syntax error at offset 4: unexpected end of input inside a value"}},
		{"number needing more digits at end", `1.`, []string{"e:jsonstream: json syntax error at offset 2: unexpected end of input inside a value"}},
		{"garbage then end of input", `}}}`, []string{"e:jsonstream: json syntax error at offset 0: invalid character '}' looking for a value"}},
	}
	for _, tt := range tests {
		for _, n := range []int{len(tt.in) + 1, 1, 2, 3, 7} {
			t.Run(fmt.Sprintf("%s/chunks of %d", tt.name, n), func(t *testing.T) {
				got := decodeAll(t, NewDecoder(Config{}), splitEvery(tt.in, n))
				require.Equal(t, tt.want, got)
			})
		}
	}
}

func TestDecoderEverySplitPoint(t *testing.T) {
	in := `{"return": {"a": ["x\"}", 1.5e3, null]}, "id": 12}` + "\r\n" + `{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}` + "\r\n"
	want := decodeAll(t, NewDecoder(Config{}), [][]byte{[]byte(in)})
	require.Len(t, want, 2)
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			got := decodeAll(t, NewDecoder(Config{}), [][]byte{[]byte(in[:i]), []byte(in[i:j]), []byte(in[j:])})
			require.Equal(t, want, got, "split at %d and %d", i, j)
		}
	}
}

func TestDecoderSizeLimit(t *testing.T) {
	const limit = 16
	exact := `{"a":"123456789"}` // 17 bytes
	require.Len(t, exact, limit+1)
	tests := []struct {
		name    string
		in      string
		wantVal string
	}{
		{"exactly the limit", `{"a":"12345678"}`, `{"a":"12345678"}`},
		{"one byte over", exact, ""},
		{"top-level number at the limit, then a space", "1234567890123456 ", "1234567890123456"},
		{"top-level number one over", "12345678901234567", ""},
		{"whitespace is not counted", "      \r\n  {\"a\":\"12345678\"}   ", `{"a":"12345678"}`},
	}
	for _, tt := range tests {
		for _, n := range []int{100, 1, 5} {
			t.Run(fmt.Sprintf("%s/chunks of %d", tt.name, n), func(t *testing.T) {
				d := NewDecoder(Config{MaxMessageSize: limit})
				got := decodeAll(t, d, splitEvery(tt.in, n))
				if tt.wantVal != "" {
					require.Equal(t, []string{"v:" + tt.wantVal}, got)
					return
				}
				require.Equal(t, []string{"e:jsonstream: json message bytes: 17 exceeds the limit of 16"}, got)
				_, err := d.Next()
				var tl *action.LimitError
				require.ErrorAs(t, err, &tl, "the error is terminal")
				require.Equal(t, action.LimitError{What: "json message bytes", Size: int64(limit) + 1, Limit: int64(limit)}, *tl)
			})
		}
	}
}

func TestDecoderHugeMessageIsNotBuffered(t *testing.T) {
	d := NewDecoder(Config{MaxMessageSize: 1 << 10})
	d.Feed([]byte(`{"a":"`))
	chunk := bytes.Repeat([]byte("x"), 100)
	var err error
	for range 1000 {
		d.Feed(chunk)
		var v []byte
		v, err = d.Next()
		require.Nil(t, v)
		if err != nil {
			break
		}
		require.LessOrEqual(t, d.Buffered(), 1<<10)
	}
	var tl *action.LimitError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, int64(1<<10), tl.Limit)
}

func TestDecoderDepthLimit(t *testing.T) {
	d := NewDecoder(Config{MaxDepth: 3})
	got := decodeAll(t, d, [][]byte{[]byte(`[[[1]]] [[[[1]]]] {"id":1}`)})
	require.Equal(t, []string{
		"v:[[[1]]]",
		"e:jsonstream: json syntax error at offset 11: nesting deeper than the limit of 3",
		`v:{"id":1}`,
	}, got)

	// The default limit is QEMU's.
	deep := strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth)
	got = decodeAll(t, &Decoder{}, [][]byte{[]byte(deep + "[" + deep + "]")})
	require.Equal(t, "v:"+deep, got[0])
	require.Equal(t, "e:jsonstream: json syntax error at offset 3072: nesting deeper than the limit of 1024", got[1])
}

// TestDecoderDepthLimitIsALimit: nesting over MaxDepth is recoverable,
// like every syntax error, and a limit hit like every other bound.
func TestDecoderDepthLimitIsALimit(t *testing.T) {
	d := NewDecoder(Config{MaxDepth: 2})
	d.Feed([]byte(`[[[1]]] {"id":1}`))
	_, err := d.Next()
	require.ErrorIs(t, err, ErrSyntax)
	require.ErrorIs(t, err, action.ErrLimit)
	var le *action.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, action.LimitError{What: "json nesting depth", Size: 3, Limit: 2}, *le)
	v, err := d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"id":1}`, string(v))

	d.Feed([]byte(`{"x"`))
	d.FeedEOF()
	_, err = d.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NotErrorIs(t, err, action.ErrLimit, "other syntax errors are no limit")
}

func TestDecoderZeroCopyAndReuse(t *testing.T) {
	d := &Decoder{} // the zero value works
	in := []byte(`{"a":1} {"b":2}`)
	d.Feed(in)
	v, err := d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(v))
	require.Same(t, &in[0], &v[0], "a value inside one feed is not copied")
	require.Equal(t, len(v), cap(v), "appending to a value cannot overwrite the input")

	// A value split across feeds is assembled in the decoder's buffer.
	v, err = d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"b":2}`, string(v))
	v, err = d.Next()
	require.NoError(t, err)
	require.Nil(t, v)
	d.Feed([]byte(`{"c":`))
	v, err = d.Next()
	require.NoError(t, err)
	require.Nil(t, v)
	require.Equal(t, 5, d.Buffered())
	d.Feed([]byte(`3}`))
	v, err = d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"c":3}`, string(v))
}

func TestDecoderFeedBeforeDrained(t *testing.T) {
	d := &Decoder{}
	a := []byte(`{"a":1}{"b":`)
	d.Feed(a)
	v, err := d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(v))
	// Feed again without draining: nothing is lost, and a is no longer needed.
	d.Feed([]byte(`2}`))
	copy(a, "############")
	v, err = d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"b":2}`, string(v))
}

func TestDecoderEOF(t *testing.T) {
	d := &Decoder{}
	d.Feed([]byte(`{"a":1} 42`))
	d.FeedEOF()
	v, err := d.Next()
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(v))
	v, err = d.Next()
	require.NoError(t, err)
	require.Equal(t, `42`, string(v), "a top-level number ends at end of input")
	_, err = d.Next()
	require.Equal(t, io.EOF, err)
	_, err = d.Next()
	require.Equal(t, io.EOF, err, "end of input is terminal")

	d = &Decoder{}
	d.Feed([]byte(`{"a":`))
	d.FeedEOF()
	_, err = d.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorIs(t, err, ErrSyntax)
}

func TestDecoderNoAllocationsInSteadyState(t *testing.T) {
	d := &Decoder{}
	msg := []byte(`{"return": {"status": "running", "singlestep": false, "running": true}, "id": 12345}` + "\r\n")
	half := len(msg) / 2
	run := func() {
		// One message whole, one split in two.
		d.Feed(msg)
		for v, _ := d.Next(); v != nil; v, _ = d.Next() {
		}
		d.Feed(msg[:half])
		for v, _ := d.Next(); v != nil; v, _ = d.Next() {
		}
		d.Feed(msg[half:])
		for v, _ := d.Next(); v != nil; v, _ = d.Next() {
		}
	}
	run()
	require.Zero(t, testing.AllocsPerRun(100, run))
}

func BenchmarkDecoderSmall(b *testing.B) {
	msg := []byte(`{"return": {"status": "running", "singlestep": false, "running": true}, "id": 12345}` + "\r\n")
	batch := bytes.Repeat(msg, 64)
	d := &Decoder{}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		d.Feed(batch)
		n := 0
		for v, err := d.Next(); v != nil || err != nil; v, err = d.Next() {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 64 {
			b.Fatalf("decoded %d messages", n)
		}
	}
}

// schemaLike builds a message shaped like QEMU 7.2's query-qmp-schema reply.
func schemaLike(size int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"return": [`)
	for i := 0; buf.Len() < size-100; i++ {
		if i > 0 {
			buf.WriteString(", ")
		}
		fmt.Fprintf(&buf, `{"name": "%d", "members": [{"name": "node-name", "type": "str"}, {"name": "x-perf", "default": null, "type": "%d"}], "meta-type": "object"}`, i, i*7)
	}
	buf.WriteString(`], "id": 1}` + "\r\n")
	return buf.Bytes()
}

func BenchmarkDecoderSchema(b *testing.B) {
	msg := schemaLike(207 << 10)
	for _, chunk := range []int{len(msg), 64 << 10, 4 << 10} {
		b.Run(fmt.Sprintf("reads of %d", chunk), func(b *testing.B) {
			d := &Decoder{}
			chunks := splitEvery(string(msg), chunk)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				got := 0
				for _, c := range chunks {
					d.Feed(c)
					for v, err := d.Next(); v != nil || err != nil; v, err = d.Next() {
						if err != nil {
							b.Fatal(err)
						}
						got = len(v)
					}
				}
				if got != len(msg)-2 {
					b.Fatalf("decoded %d bytes", got)
				}
			}
		})
	}
}

// FuzzDecoder checks that the decoder never panics, agrees with
// encoding/json on single values, delivers only valid JSON, stays within its
// limit, and gives the same results however the input is split.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":1}`,
		"{\"return\": {}, \"id\": 1}\r\n{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n",
		`"abc" 123 -1.5e-3 true false null [] {}`,
		`{"a":"\u00e9\"}{"} junk {"b":[1,2,{"c":null}]}`,
		"{\"a\":\"x\n{\"b\":1}",
		`[[[[[[[[[[1]]]]]]]]]]`,
		"\xff\x00}{",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		cfg := Config{MaxMessageSize: 512, MaxDepth: 8}
		whole := decodeAll(t, NewDecoder(cfg), [][]byte{bytes.Clone(data)})
		n := int(split%16) + 1
		pieces := decodeAll(t, NewDecoder(cfg), splitEvery(string(data), n))
		require.Equal(t, whole, pieces, "split into chunks of %d", n)
		for _, s := range whole {
			if strings.HasPrefix(s, "v:") {
				require.LessOrEqual(t, len(s)-2, 512)
			}
		}
		// A single valid value, shallow and small enough, comes out whole.
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		trimmed = bytes.TrimRight(trimmed, " \t\r\n")
		if json.Valid(data) && len(trimmed) <= 512 && depthOf(trimmed) <= 8 {
			require.Equal(t, []string{"v:" + string(trimmed)}, whole)
		}
	})
}

func depthOf(v []byte) int {
	var depth, maxDepth int
	inStr, esc := false, false
	for _, c := range v {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			depth++
			maxDepth = max(maxDepth, depth)
		case !inStr && (c == '}' || c == ']'):
			depth--
		}
	}
	return maxDepth
}
