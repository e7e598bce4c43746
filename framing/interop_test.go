package framing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/internal/testpeers"
)

// The vectors in testdata/hg-builders.json are what Mercurial 6.3's builders
// produced for sequences of operations on one output stream
// (testdata/gen_builders.py). Every operation is replayed here with
// OutputStream and must append the same bytes, or fail the same way.

type hgVectorFile struct {
	Mercurial string     `json:"mercurial"`
	Vectors   []hgVector `json:"vectors"`
}

type hgVector struct {
	Name         string `json:"name"`
	Stream       uint8  `json:"stream"`
	MaxFrameSize int    `json:"maxframesize"`
	Ops          []hgOp `json:"ops"`
}

type hgOp struct {
	Op         string                     `json:"op"`
	RequestID  uint16                     `json:"requestid"`
	Args       map[string]json.RawMessage `json:"args"`
	Out        *string                    `json:"out"`
	OutLen     int                        `json:"out_len"`
	OutSHA256  string                     `json:"out_sha256"`
	OutFrames  int                        `json:"out_frames"`
	OutHeaders []string                   `json:"out_headers"`
	Error      *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// pattern and asciiPattern are the generator's filler bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + 3) % 251)
	}
	return b
}

func asciiPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// hgValue rebuilds a value from the generator's tagged JSON: byte strings as
// []byte, map keys as hgcbor.Bytes, integers as int64.
func hgValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	return hgValueOf(t, v)
}

func hgValueOf(t *testing.T, v any) any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		return v // nil or bool
	}
	require.Len(t, m, 1, "tagged value %v", v)
	for tag, x := range m {
		switch tag {
		case "int":
			return int64(x.(float64))
		case "bytes":
			b, err := hex.DecodeString(x.(string))
			require.NoError(t, err)
			return b
		case "pattern":
			return pattern(int(x.(float64)))
		case "ascii":
			return asciiPattern(int(x.(float64)))
		case "list":
			var out []any
			for _, e := range x.([]any) {
				out = append(out, hgValueOf(t, e))
			}
			return out
		case "dict":
			out := map[hgcbor.Bytes]any{}
			for _, kv := range x.([]any) {
				pair := kv.([]any)
				out[hgcbor.Bytes(hgValueOf(t, pair[0]).([]byte))] = hgValueOf(t, pair[1])
			}
			return out
		}
	}
	t.Fatalf("unknown tagged value %v", v)
	return nil
}

func (op *hgOp) has(key string) bool { _, ok := op.Args[key]; return ok }

func (op *hgOp) value(t *testing.T, key string) any {
	raw, ok := op.Args[key]
	if !ok {
		return nil
	}
	return hgValue(t, raw)
}

func (op *hgOp) str(t *testing.T, key string) string {
	b, ok := op.value(t, key).([]byte)
	require.True(t, ok, "argument %s is a byte string", key)
	return string(b)
}

// Test encoders, twins of the generator's.

// xorEncoder transforms every byte and holds nothing back.
type xorEncoder struct{}

func (xorEncoder) Name() string { return "test-xor" }
func (xorEncoder) Encode(dst, p []byte) []byte {
	for _, b := range p {
		dst = append(dst, b^0x5a)
	}
	return dst
}
func (xorEncoder) Flush(dst []byte) []byte  { return dst }
func (xorEncoder) Finish(dst []byte) []byte { return dst }

// holdEncoder holds everything back until Flush, which brackets it.
type holdEncoder struct{ held []byte }

func (*holdEncoder) Name() string                  { return "test-hold" }
func (e *holdEncoder) Encode(dst, p []byte) []byte { e.held = append(e.held, p...); return dst }
func (e *holdEncoder) Flush(dst []byte) []byte {
	dst = append(append(append(dst, '['), e.held...), ']')
	e.held = e.held[:0]
	return dst
}
func (*holdEncoder) Finish(dst []byte) []byte { return append(dst, '!') }

func testEncoder(t *testing.T, name string) Encoder {
	switch name {
	case "identity":
		return IdentityEncoder{}
	case "test-xor":
		return xorEncoder{}
	case "test-hold":
		return &holdEncoder{}
	}
	t.Fatalf("no test encoder %q", name)
	return nil
}

// replay runs op on s and returns what it appended.
func replay(t *testing.T, s *OutputStream, emitters map[uint16]*ResponseEmitter, op *hgOp) ([]byte, error) {
	rid := op.RequestID
	// Append after a prefix, to check builders append rather than overwrite.
	prefix := []byte("prefix")
	var out []byte
	var err error
	dst := bytes.Clone(prefix)
	switch op.Op {
	case "command":
		req := CommandRequest{Name: op.str(t, "name"), Redirect: op.value(t, "redirect")}
		if a := op.value(t, "args"); a != nil {
			req.Args = a.(map[hgcbor.Bytes]any)
		}
		if op.has("data") {
			var n int
			require.NoError(t, json.Unmarshal(op.Args["data"], &n))
			req.Data = iotest.HalfReader(bytes.NewReader(pattern(n))) // short reads, too
		}
		out, err = s.AppendCommandRequest(dst, rid, req)
	case "ok":
		out, err = s.AppendResponseOK(dst, rid)
	case "eos":
		out, err = s.AppendResponseEOS(dst, rid)
	case "settings":
		out, err = s.AppendStreamSettings(dst, rid)
	case "setencoder":
		s.SetEncoder(testEncoder(t, op.str(t, "name")))
		out = dst
	case "altloc":
		out, err = s.AppendAlternateLocation(dst, rid, AlternateLocation{
			URL: op.str(t, "url"), MediaType: op.str(t, "mediatype"),
			Size: op.value(t, "size"), FullHashes: op.value(t, "fullhashes"), FullHashSeed: op.value(t, "fullhashseed"),
			ServerDERCerts: op.value(t, "serverdercerts"), ServerCADERCerts: op.value(t, "servercadercerts"),
		})
	case "cmderror":
		var args []any
		if a := op.value(t, "args"); a != nil {
			args = a.([]any)
		}
		out, err = s.AppendCommandError(dst, rid, op.str(t, "message"), args)
	case "error":
		out, err = s.AppendErrorResponse(dst, rid, op.str(t, "msg"), op.str(t, "errtype"))
	case "text":
		var atoms []struct {
			Format json.RawMessage   `json:"format"`
			Args   []json.RawMessage `json:"args"`
			Labels []json.RawMessage `json:"labels"`
		}
		require.NoError(t, json.Unmarshal(op.Args["atoms"], &atoms))
		var in []TextAtom
		for _, a := range atoms {
			ta := TextAtom{Format: string(hgValue(t, a.Format).([]byte))}
			for _, x := range a.Args {
				ta.Args = append(ta.Args, string(hgValue(t, x).([]byte)))
			}
			for _, x := range a.Labels {
				ta.Labels = append(ta.Labels, string(hgValue(t, x).([]byte)))
			}
			in = append(in, ta)
		}
		out, err = s.AppendTextOutput(dst, rid, in)
	case "emit":
		e := emitters[rid]
		if e == nil {
			e = NewResponseEmitter(s, rid)
			emitters[rid] = e
		}
		if data := op.value(t, "data"); data != nil {
			out, err = e.Send(dst, data.([]byte))
		} else {
			out, err = e.Flush(dst)
		}
	case "protocolsettings":
		var encodings []string
		require.NoError(t, json.Unmarshal(op.Args["encodings"], &encodings))
		out, err = s.AppendSenderProtocolSettings(dst, rid, encodings)
		if err == nil {
			out, err = s.AppendCommandRequest(out, rid, CommandRequest{Name: op.str(t, "name")})
		}
	default:
		t.Fatalf("unknown operation %q", op.Op)
	}
	require.True(t, bytes.HasPrefix(out, prefix), "builder kept dst's contents")
	if err != nil {
		require.Equal(t, len(prefix), len(out), "failed builder returns dst unchanged")
	}
	return out[len(prefix):], err
}

var pythonPosition = regexp.MustCompile(`position (\d+)`)
var pythonByte = regexp.MustCompile(`byte 0x([0-9a-f]{2})`)

// requireSameError checks err is our counterpart of the exception Mercurial
// raised.
func requireSameError(t *testing.T, typ, msg string, err error) {
	t.Helper()
	require.Error(t, err, "Mercurial raised %s: %s", typ, msg)
	switch typ {
	case "ProgrammingError":
		require.ErrorIs(t, err, ErrNoStreamSettings)
	case "AssertionError": // createerrorframe's message bound
		var tooLarge *action.LimitError
		require.ErrorAs(t, err, &tooLarge)
		require.Equal(t, "error-response message bytes", tooLarge.What)
	case "ValueError":
		require.Equal(t, "cannot encode data in a single frame", msg)
		var tooLarge *action.LimitError
		require.ErrorAs(t, err, &tooLarge)
		require.Equal(t, frame.TypeTextOutput.String()+" payload bytes", tooLarge.What)
	case "UnicodeEncodeError", "UnicodeDecodeError":
		var textErr *TextOutputError
		require.ErrorAs(t, err, &textErr)
		field := map[string]string{"UnicodeEncodeError": "format", "UnicodeDecodeError": "label"}[typ]
		require.Equal(t, field, textErr.Field)
		m := pythonPosition.FindStringSubmatch(msg)
		require.NotNil(t, m, msg)
		pos, _ := strconv.Atoi(m[1])
		require.Equal(t, pos, textErr.Offset, "offset of the first non-ASCII byte, as %q", msg)
		if m := pythonByte.FindStringSubmatch(msg); m != nil {
			require.Equal(t, m[1], fmt.Sprintf("%02x", textErr.Byte))
		}
	default:
		t.Fatalf("no counterpart for %s: %s", typ, msg)
	}
}

func frameHeaders(b []byte) []string {
	var hs []string
	for len(b) >= frame.HeaderSize {
		hs = append(hs, hex.EncodeToString(b[:frame.HeaderSize]))
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		b = b[min(len(b), frame.HeaderSize+n):]
	}
	return hs
}

func loadVectors(t *testing.T) hgVectorFile {
	raw, err := os.ReadFile(filepath.Join("testdata", "hg-builders.json"))
	require.NoError(t, err)
	var vf hgVectorFile
	require.NoError(t, json.Unmarshal(raw, &vf))
	require.NotEmpty(t, vf.Vectors)
	return vf
}

func TestBuildersMatchMercurial(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			s := NewOutputStream(v.Stream, OutputStreamConfig{MaxFramePayload: v.MaxFrameSize})
			require.Equal(t, v.MaxFrameSize, s.MaxFramePayload())
			emitters := map[uint16]*ResponseEmitter{}
			for i := range v.Ops {
				op := &v.Ops[i]
				got, err := replay(t, s, emitters, op)
				if op.Error != nil {
					requireSameError(t, op.Error.Type, op.Error.Message, err)
					continue
				}
				require.NoError(t, err, "operation %d (%s)", i, op.Op)
				if op.Out != nil {
					require.Equal(t, *op.Out, hex.EncodeToString(got), "operation %d (%s)", i, op.Op)
					continue
				}
				require.Equal(t, op.OutLen, len(got), "operation %d (%s) output length", i, op.Op)
				hs := frameHeaders(got)
				require.Len(t, hs, op.OutFrames, "operation %d (%s) frames", i, op.Op)
				if op.OutHeaders != nil {
					require.Equal(t, op.OutHeaders, hs, "operation %d (%s) frame headers", i, op.Op)
				}
				sum := sha256.Sum256(got)
				require.Equal(t, op.OutSHA256, hex.EncodeToString(sum[:]), "operation %d (%s) bytes", i, op.Op)
			}
		})
	}
}

// The committed vectors are what the installed Mercurial produces now.
func TestBuilderVectorsUpToDate(t *testing.T) {
	py := testpeers.MercurialPython(t)
	out := filepath.Join(t.TempDir(), "hg-builders.json")
	cmd := exec.Command(py, filepath.Join("testdata", "gen_builders.py"), out)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run())
	fresh, err := os.ReadFile(out)
	require.NoError(t, err)
	committed, err := os.ReadFile(filepath.Join("testdata", "hg-builders.json"))
	require.NoError(t, err)
	if !bytes.Equal(fresh, committed) {
		var a, b hgVectorFile
		require.NoError(t, json.Unmarshal(fresh, &a))
		require.NoError(t, json.Unmarshal(committed, &b))
		require.Equal(t, b, a, "Mercurial's builders now produce different vectors; rerun testdata/gen_builders.py")
		t.Fatal("testdata/hg-builders.json differs from the generator's output only in layout; rerun testdata/gen_builders.py")
	}
}
