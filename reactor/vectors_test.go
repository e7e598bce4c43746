package reactor

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

const vectorsPath = "testdata/hg-reactor-vectors.json"

type vectorFile struct {
	Mercurial string         `json:"mercurial"`
	Encoders  []string       `json:"encoders"`
	Server    []serverVector `json:"server"`
	Client    []clientVector `json:"client"`
}

type serverVector struct {
	Name        string `json:"name"`
	DeferOutput bool   `json:"deferoutput"`
	Steps       []step `json:"steps"`
}

type clientVector struct {
	Name            string          `json:"name"`
	HasMultipleSend bool            `json:"hasmultiplesend"`
	BufferSends     bool            `json:"buffersends"`
	Encoders        json.RawMessage `json:"encoders"`
	Steps           []step          `json:"steps"`
}

type step struct {
	Op       string            `json:"op"`
	Hex      string            `json:"hex"`
	Human    string            `json:"human"`
	Stream   int               `json:"stream"`
	Request  int               `json:"request"`
	Objects  []json.RawMessage `json:"objects"`
	Message  json.RawMessage   `json:"message"`
	Args     json.RawMessage   `json:"args"`
	Atoms    [][]json.RawMessage
	Name     json.RawMessage `json:"name"`
	Data     json.RawMessage `json:"data"`
	Redirect json.RawMessage `json:"redirect"`
	State    string          `json:"state"`
	Result   result          `json:"result"`
}

type result struct {
	Action     string          `json:"action"`
	Frames     []string        `json:"frames"`
	Message    json.RawMessage `json:"message"`
	Type       json.RawMessage `json:"type"`
	RequestID  int             `json:"requestid"`
	Command    json.RawMessage `json:"command"`
	Args       json.RawMessage `json:"args"`
	Redirect   json.RawMessage `json:"redirect"`
	Data       json.RawMessage `json:"data"`
	State      string          `json:"state"`
	StreamID   int             `json:"streamid"`
	ExpectMore bool            `json:"expectmore"`
	EOS        bool            `json:"eos"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	require.NoError(t, err)
	var vf vectorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&vf))
	return &vf
}

// value converts the generator's tagged JSON into the Go value model of
// hgcbor's decoder.
func value(t testing.TB, raw json.RawMessage, asKey bool) any {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return fromJSON(t, v, asKey)
}

func fromJSON(t testing.TB, v any, asKey bool) any {
	switch v := v.(type) {
	case nil, bool:
		return v
	case json.Number:
		n, err := v.Int64()
		require.NoError(t, err)
		return n
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = fromJSON(t, x, false)
		}
		return out
	case map[string]any:
		switch {
		case v["bytes"] != nil:
			b, err := hex.DecodeString(v["bytes"].(string))
			require.NoError(t, err)
			if asKey {
				return hgcbor.Bytes(b)
			}
			return b
		case v["text"] != nil:
			return v["text"].(string)
		case v["map"] != nil:
			m := map[any]any{}
			for _, kv := range v["map"].([]any) {
				pair := kv.([]any)
				m[fromJSON(t, pair[0], true)] = fromJSON(t, pair[1], false)
			}
			return m
		case v["set"] != nil:
			var s hgcbor.Set
			for _, x := range v["set"].([]any) {
				s = append(s, fromJSON(t, x, true))
			}
			return s
		}
	}
	t.Fatalf("unknown vector value %#v", v)
	return nil
}

// sameValue compares two values by their Mercurial CBOR encoding, which is
// canonical: equal encodings mean equal values of the same kinds.
func sameValue(t testing.TB, want, got any, msg string) {
	t.Helper()
	w, err := hgcbor.Marshal(want)
	require.NoError(t, err, msg)
	g, err := hgcbor.Marshal(got)
	require.NoError(t, err, msg)
	require.Equal(t, hex.EncodeToString(w), hex.EncodeToString(g), "%s: want %#v, got %#v", msg, want, got)
}

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func parseFrames(t testing.TB, b []byte) []frame.Frame {
	t.Helper()
	var out []frame.Frame
	for len(b) > 0 {
		require.GreaterOrEqual(t, len(b), frame.HeaderSize)
		h, err := frame.ParseHeader(b)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(b), frame.HeaderSize+h.Length)
		out = append(out, frame.Frame{RequestID: h.RequestID, StreamID: h.StreamID, StreamFlags: h.StreamFlags,
			Type: h.Type, Flags: h.Flags, Payload: b[frame.HeaderSize : frame.HeaderSize+h.Length]})
		b = b[frame.HeaderSize+h.Length:]
	}
	return out
}

func frameFromHex(t testing.TB, s string) frame.Frame {
	fs := parseFrames(t, mustHex(t, s))
	require.Len(t, fs, 1)
	return fs[0]
}

// streamLog collects a stream's encoded payloads from both sides, to
// compare what they decode to at the end of a vector.
type streamLog struct {
	encoding string
	want     []byte
	got      []byte
}

func decodeStream(t testing.TB, encoding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch encoding {
	case EncodingZlib:
		zr, err := zlib.NewReader(bytes.NewReader(b))
		require.NoError(t, err)
		r = zr
	case EncodingZstd8MB:
		zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1))
		require.NoError(t, err)
		defer zr.Close()
		r = zr
	default:
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	return out
}

// normalize turns frames into comparable lines. Frames on a compressed
// stream carry compressor output, which differs between zlib and zstd
// implementations: their payloads are logged for decoding, and consecutive
// encoded command-response frames of one request become one line.
func normalize(t testing.TB, frames []frame.Frame, logs map[uint8]*streamLog, side string) []string {
	var out []string
	for _, f := range frames {
		lg := logs[f.StreamID]
		if f.Type == frame.TypeStreamSettings && f.Flags&frame.FlagStreamSettingsEOS != 0 {
			v, err := hgcbor.Unmarshal(f.Payload)
			require.NoError(t, err)
			if lg == nil {
				lg = &streamLog{}
				logs[f.StreamID] = lg
			}
			lg.encoding = string(v.([]byte))
		}
		compressed := lg != nil && lg.encoding != EncodingIdentity && f.StreamFlags&frame.StreamFlagEncoded != 0
		if !compressed {
			out = append(out, fmt.Sprintf("%d %d %s %s %s %x", f.RequestID, f.StreamID, f.StreamFlags, f.Type, f.Type.FlagsString(f.Flags), f.Payload))
			continue
		}
		if side == "want" {
			lg.want = append(lg.want, f.Payload...)
		} else {
			lg.got = append(lg.got, f.Payload...)
		}
		line := fmt.Sprintf("%d %d encoded-response", f.RequestID, f.StreamID)
		eos := f.Flags&frame.FlagCommandResponseEOS != 0
		if n := len(out); n > 0 && strings.HasPrefix(out[n-1], line) && !strings.HasSuffix(out[n-1], "eos") {
			out = out[:n-1]
		}
		if f.Type != frame.TypeCommandResponse {
			line = fmt.Sprintf("%d %d encoded %s", f.RequestID, f.StreamID, f.Type)
		}
		if eos {
			line += " eos"
		}
		out = append(out, line)
	}
	return out
}

func compareFrames(t testing.TB, want []string, got []action.Action[Command], logs map[uint8]*streamLog, msg string) {
	t.Helper()
	var wantB, gotB []byte
	for _, h := range want {
		wantB = append(wantB, mustHex(t, h)...)
	}
	for _, a := range got {
		require.Equal(t, action.KindSend, a.Kind, "%s: got %v", msg, a)
		gotB = append(gotB, a.Bytes...)
	}
	w := normalize(t, parseFrames(t, wantB), logs, "want")
	g := normalize(t, parseFrames(t, gotB), logs, "got")
	require.Equal(t, w, g, msg)
}
