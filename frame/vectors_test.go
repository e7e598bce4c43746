package frame

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/internal/testpeers"
)

const (
	vectorsFile = "testdata/hg-vectors.json"
	generator   = "testdata/gen_vectors.py"
)

type blob struct {
	Hex    string `json:"hex"`
	Prefix string `json:"prefix"`
	Length int    `json:"length"`
	SHA256 string `json:"sha256"`
}

// check asserts that got is the bytes b describes.
func (b blob) check(t *testing.T, got []byte, msg string) {
	t.Helper()
	if b.Hex != "" || b.SHA256 == "" {
		require.Equal(t, b.Hex, hex.EncodeToString(got), msg)
		return
	}
	require.Equal(t, b.Length, len(got), msg)
	require.Equal(t, b.Prefix, hex.EncodeToString(got[:len(b.Prefix)/2]), msg)
	sum := sha256.Sum256(got)
	require.Equal(t, b.SHA256, hex.EncodeToString(sum[:]), msg)
}

func (b blob) bytes(t *testing.T) []byte {
	t.Helper()
	require.Empty(t, b.SHA256, "vector needs full bytes")
	p, err := hex.DecodeString(b.Hex)
	require.NoError(t, err)
	return p
}

type fill struct {
	Text  string `json:"text"`
	Count int    `json:"count"`
}

func expand(s string, f *fill) string {
	if f == nil {
		return s
	}
	return strings.Replace(s, "{fill}", strings.Repeat(f.Text, f.Count), 1)
}

type vectors struct {
	Mercurial string `json:"mercurial"`
	Human     []struct {
		Human string `json:"human"`
		Fill  *fill  `json:"fill"`
		Error string `json:"error"`
		blob
	} `json:"human"`
	Headers []struct {
		Hex       string `json:"hex"`
		Length    int    `json:"length"`
		Mercurial struct {
			Length      int `json:"length"`
			RequestID   int `json:"requestid"`
			StreamID    int `json:"streamid"`
			StreamFlags int `json:"streamflags"`
			TypeID      int `json:"typeid"`
			Flags       int `json:"flags"`
		} `json:"mercurial"`
	} `json:"headers"`
	CBOREncode []struct {
		Literal string `json:"literal"`
		Fill    *fill  `json:"fill"`
		blob
	} `json:"cbor_encode"`
	CBORDecode []struct {
		Indefinite blob `json:"indefinite"`
		Definite   blob `json:"definite"`
	} `json:"cbor_decode"`
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	raw, err := os.ReadFile(vectorsFile)
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NotEmpty(t, v.Human)
	return &v
}

// humanDeviations are the human strings on which this package and
// Mercurial 6.3 knowingly disagree (see ParseHuman).
var humanDeviations = map[string]string{
	"1 1 0 command-request new cbor:'text'":         "Mercurial's Python 3 cborutil cannot encode str; we encode text strings",
	"1 1 0 command-request new cbor:{'k': b'v'}":    "Mercurial's Python 3 cborutil cannot encode str; we encode text strings",
	"1 1 0 command-request new cbor:{(1, 2): b'x'}": "Mercurial encodes tuple keys; hgcbor has no comparable tuple type, we reject them",
	"1 1 0 command-request new cbor:{(b'a',)}":      "Mercurial encodes tuples in sets; hgcbor has no comparable tuple type, we reject them",
	"1 1 0 command-request 16 ":                     "flags above 15 spill into the type nibble in Mercurial; we reject them",
	"1 1 0 command-request 32 ":                     "flags above 15 spill into the type nibble in Mercurial; we reject them",
}

func TestVectorsHuman(t *testing.T) {
	v := loadVectors(t)
	seen := map[string]bool{}
	for _, vec := range v.Human {
		s := expand(vec.Human, vec.Fill)
		name := vec.Human
		t.Run(name, func(t *testing.T) {
			f, err := ParseHuman(s)
			if why, ok := humanDeviations[vec.Human]; ok {
				seen[vec.Human] = true
				if vec.Error != "" {
					require.NoError(t, err, "deviation: %s", why)
				} else {
					require.Error(t, err, "deviation: %s", why)
					var he *HumanError
					require.ErrorAs(t, err, &he)
				}
				return
			}
			if vec.Error != "" {
				require.Error(t, err, "Mercurial raises %s", vec.Error)
				var he *HumanError
				require.ErrorAs(t, err, &he)
				return
			}
			require.NoError(t, err)
			vec.blob.check(t, f.Append(nil), "frame bytes")

			again, err := ParseHuman(FormatHuman(f))
			require.NoError(t, err, "FormatHuman gave %q", FormatHuman(f))
			require.Equal(t, f, again)
		})
	}
	require.Len(t, seen, len(humanDeviations), "every documented deviation has a vector")
}

func TestVectorsHeaders(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.Headers {
		b, err := hex.DecodeString(vec.Hex)
		require.NoError(t, err)
		h, _ := ParseHeader(b) // validity is TestParseHeaderRejects' business
		hg := vec.Mercurial
		require.Equal(t, vec.Length, h.Length, vec.Hex)
		require.Equal(t, hg.RequestID, int(h.RequestID))
		require.Equal(t, hg.StreamID, int(h.StreamID))
		require.Equal(t, hg.StreamFlags, int(h.StreamFlags))
		require.Equal(t, hg.TypeID, int(h.Type))
		require.Equal(t, hg.Flags, int(h.Flags))
		// Mercurial weighs the third length byte by 16384, not 65536: it
		// agrees with us exactly below MercurialSafePayload.
		require.Equal(t, int(b[0])+256*int(b[1])+16384*int(b[2]), hg.Length)
		require.Equal(t, vec.Length < MercurialSafePayload, hg.Length == h.Length, vec.Hex)
	}
}

func TestVectorsCBOREncode(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.CBOREncode {
		t.Run(vec.Literal, func(t *testing.T) {
			val, err := hgcbor.ParsePythonLiteral(expand(vec.Literal, vec.Fill))
			require.NoError(t, err)
			got, err := hgcbor.Marshal(val)
			require.NoError(t, err)
			vec.blob.check(t, got, vec.Literal)

			if vec.SHA256 == "" {
				// Decoding Mercurial's bytes and encoding again gives them back.
				dec, err := hgcbor.Unmarshal(vec.bytes(t))
				require.NoError(t, err)
				again, err := hgcbor.Marshal(dec)
				require.NoError(t, err)
				require.Equal(t, vec.Hex, hex.EncodeToString(again))
			}
		})
	}
}

func TestVectorsCBORDecodeIndefinite(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.CBORDecode {
		in := vec.Indefinite.bytes(t)
		val, err := hgcbor.Unmarshal(in)
		require.NoError(t, err, vec.Indefinite.Hex)
		got, err := hgcbor.Marshal(val)
		require.NoError(t, err)
		vec.Definite.check(t, got, vec.Indefinite.Hex)

		// And through the push decoder, one byte at a time.
		var d hgcbor.Decoder
		var items []any
		for i := range in {
			d.Feed(in[i : i+1])
			it, ok, err := d.Next()
			require.NoError(t, err)
			if ok {
				items = append(items, it)
			}
		}
		require.Equal(t, []any{val}, items)
	}
}

// TestVectorsUpToDate re-runs the generator against the installed Mercurial
// and requires the committed vectors to be exactly what it prints.
func TestVectorsUpToDate(t *testing.T) {
	python := testpeers.MercurialPython(t)
	var stderr bytes.Buffer
	cmd := exec.Command(python, generator)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	committed, err := os.ReadFile(vectorsFile)
	require.NoError(t, err)
	if !bytes.Equal(committed, out) {
		t.Fatalf("%s differs from what %s prints with the installed Mercurial; regenerate with\n\t%s %s > %s",
			vectorsFile, generator, python, "frame/"+generator, "frame/"+vectorsFile)
	}
}
