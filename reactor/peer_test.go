package reactor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/internal/testpeers"
)

// TestVectorsMatchLiveMercurial re-runs the vector generator against the
// installed Mercurial and requires its output to be the committed file, so
// the replay tests compare against what Mercurial does today.
func TestVectorsMatchLiveMercurial(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Mercurial")
	}
	py := testpeers.MercurialPython(t)
	cmd := exec.Command(py, "testdata/gen_reactor_vectors.py")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	want, err := os.ReadFile(vectorsPath)
	require.NoError(t, err)
	if !bytes.Equal(want, out) {
		t.Fatalf("Mercurial's reactors now answer differently from %s (%d bytes generated, %d committed); "+
			"regenerate with: %s testdata/gen_reactor_vectors.py > %s, then review the replay tests",
			vectorsPath, len(out), len(want), py, vectorsPath)
	}
}

// TestMercurialClientDecodesOurResponses sends responses built by our
// server reactor — identity, zlib and zstd-8mb, several on one stream,
// large and small — through Mercurial's own client reactor and requires it
// to decode exactly the CBOR we meant.
func TestMercurialClientDecodesOurResponses(t *testing.T) {
	py := testpeers.MercurialPython(t)
	for _, enc := range []string{EncodingIdentity, EncodingZlib, EncodingZstd8MB} {
		t.Run(enc, func(t *testing.T) {
			s := NewServerMachine(ServerMachineConfig{})
			s.OnFrame(frame.Frame{StreamID: 1, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeSenderProtocolSettings,
				Flags:   frame.FlagSenderProtocolSettingsEOS,
				Payload: mustMarshal(map[hgcbor.Bytes]any{"contentencodings": []any{[]byte(enc)}})})
			var out *OutputStream
			var frames []string
			want := map[string][]byte{}
			big := bytes.Repeat([]byte("0123456789abcdef changeset "), 10000)
			for i, objs := range [][]any{
				{[]byte("small")},
				{big, map[hgcbor.Bytes]any{"k": []any{int64(1), []byte("v")}}},
				{},
				{[]byte("last")},
			} {
				rid := uint16(2*i + 1)
				s.OnFrame(frame.Frame{RequestID: rid, StreamID: 1, Type: frame.TypeCommandRequest,
					Flags: frame.FlagCommandRequestNew, Payload: mustMarshal(map[hgcbor.Bytes]any{"name": []byte("cmd")})})
				delivered := false
				for _, a := range actiontest.Drain(s) {
					switch a.Kind {
					case action.KindSend:
						frames = appendFrameHex(t, frames, a.Bytes)
					case action.KindDeliver:
						delivered = true
					}
				}
				require.True(t, delivered)
				if out == nil {
					out = s.NewOutputStream()
					require.Equal(t, enc, out.Encoding())
				}
				require.NoError(t, s.RespondObjects(out, rid, objs...))
				if len(objs) > 0 {
					w := append([]byte(nil), okPayload...)
					for _, o := range objs {
						var err error
						w, err = hgcbor.Append(w, o)
						require.NoError(t, err)
					}
					want[fmt.Sprint(rid)] = w
				}
			}
			for _, a := range actiontest.Drain(s) {
				require.Equal(t, action.KindSend, a.Kind)
				frames = appendFrameHex(t, frames, a.Bytes)
			}
			in, err := json.Marshal(map[string]any{"requests": 4, "frames": frames})
			require.NoError(t, err)
			cmd := exec.Command(py, "testdata/hg_client_decode.py")
			cmd.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			outJSON, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			var got struct {
				Data   map[string]string
				EOS    []int
				Errors []string
			}
			require.NoError(t, json.Unmarshal(outJSON, &got))
			require.Empty(t, got.Errors)
			require.Equal(t, []int{1, 3, 7}, got.EOS)
			require.Len(t, got.Data, len(want))
			for rid, w := range want {
				require.Equal(t, hex.EncodeToString(w), got.Data[rid], "request %s", rid)
			}
		})
	}
}

func appendFrameHex(t *testing.T, frames []string, wire []byte) []string {
	for _, f := range parseFrames(t, wire) {
		frames = append(frames, hex.EncodeToString(f.Append(nil)))
	}
	return frames
}
