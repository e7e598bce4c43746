package transcript_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/transcript"
)

// FuzzRead: any input is read or rejected with a *FormatError, never a
// panic; what is read writes back to a transcript that reads the same.
func FuzzRead(f *testing.F) {
	seed, err := os.ReadFile("testdata/stop-cont.jsonl")
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte("{\"transcript\":1}\n{\"conn\":1,\"t\":0,\"ev\":\"send\",\"base64\":\"/wB4\"}"))
	f.Add([]byte("{\"transcript\":1}\n{\"conn\":1,\"t\":1e308,\"ev\":\"close\",\"err\":\"x\"}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := transcript.Read(bytes.NewReader(data))
		if err != nil {
			require.ErrorIs(t, err, transcript.ErrFormat)
			return
		}
		var buf bytes.Buffer
		w, err := transcript.NewWriter(&buf, tr.Header)
		require.NoError(t, err)
		for _, e := range tr.Entries {
			require.NoError(t, w.Write(e))
		}
		again, err := transcript.Read(&buf)
		require.NoError(t, err, "written:\n%s", buf.String())
		require.Equal(t, len(tr.Entries), len(again.Entries))
		for i := range tr.Entries {
			require.Equal(t, tr.Entries[i].Bytes(), again.Entries[i].Bytes())
			require.Equal(t, tr.Entries[i].Ev, again.Entries[i].Ev)
		}
	})
}

// FuzzQMPPeer feeds a replaying peer arbitrary client bytes: it never
// panics, ends every drain, and once it reports an Error keeps reporting it.
func FuzzQMPPeer(f *testing.F) {
	f.Add([]byte(`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 1}{"execute": "stop", "id": 2}`), uint8(5), false)
	f.Add([]byte(`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": "x"}]]`), uint8(0), true)
	f.Add([]byte(`{"execute": "stop"}`), uint8(1), true)
	tr := load(f, "stop-cont.jsonl")
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, eof bool) {
		peer, err := transcript.NewQMPPeer(tr, transcript.QMPPeerConfig{Timed: chunk&1 == 1})
		require.NoError(t, err)
		opts := []actiontest.Option{actiontest.Chunks(int(chunk%16) + 1), actiontest.Limit(1 << 12)}
		if eof {
			opts = append(opts, actiontest.ThenEOF())
		}
		got := actiontest.Feed[transcript.Matched](peer, data, opts...)
		require.NotErrorIs(t, got.Err(), actiontest.ErrRunaway)
		if err := got.Err(); err != nil {
			require.Equal(t, action.Fail[transcript.Matched](err), peer.Next(), "terminal")
		}
		_ = peer.Done()
	})
}
