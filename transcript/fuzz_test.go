package transcript_test

import (
	"bytes"
	"os"
	"strings"
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
		peer, err := transcript.NewQMPPeer(tr, transcript.PeerConfig{Timed: chunk&1 == 1})
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

// FuzzFrameRecording: a frame stream recorded frame by frame reads back to
// the bytes recorded, whatever they are, and never panics.
func FuzzFrameRecording(f *testing.F) {
	f.Add([]byte("\x0c\x00\x00\x01\x00\x01\x01\x11\xa1DnameEheads"), uint8(3))
	f.Add([]byte("\x05\x00\x00\x01\x00\x01\x01\x22cbor:"), uint8(0))
	f.Add([]byte("\x01\x00\x00\x01\x00\x01\x01\x22\x9f"), uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		var buf bytes.Buffer
		rec, err := transcript.NewRecorder(&buf, transcript.RecorderConfig{SplitFrames: true})
		require.NoError(t, err)
		k := min(int(cut), len(data))
		rec.Inbound(data[:k])
		rec.Inbound(data[k:])
		rec.End(nil)
		tr, err := transcript.Read(&buf)
		require.NoError(t, err)
		var back []byte
		for _, e := range tr.Entries {
			if e.Err != "" {
				return // not a frame stream: what follows is raw
			}
			back = append(back, e.Bytes()...)
		}
		require.True(t, bytes.HasPrefix(data, back), "recorded %q from %q", back, data)
	})
}

// FuzzFramePeer feeds a replaying frame peer arbitrary client bytes.
func FuzzFramePeer(f *testing.F) {
	f.Add([]byte("\x0c\x00\x00\x01\x00\x01\x01\x11\xa1DnameEheads"), uint8(5), false)
	f.Add([]byte("\x0c\x00\x00"), uint8(0), true)
	tr, err := transcript.Read(strings.NewReader(`{"transcript":1,"protocol":"hgframe"}
{"conn":1,"t":0,"ev":"send","frame":"1 1 stream-begin command-request new cbor:{b'name': b'heads'}"}
{"conn":1,"t":0,"ev":"recv","frame":"1 2 stream-begin stream-settings eos cbor:b'identity'"}
{"conn":1,"t":0,"ev":"recv","frame":"1 2 encoded command-response eos cbor:{b'status': b'ok'}"}
{"conn":1,"t":0,"ev":"close"}`))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, eof bool) {
		peer, err := transcript.NewFramePeer(tr, transcript.PeerConfig{})
		require.NoError(t, err)
		opts := []actiontest.Option{actiontest.Chunks(int(chunk%16) + 1), actiontest.Limit(1 << 12)}
		if eof {
			opts = append(opts, actiontest.ThenEOF())
		}
		got := actiontest.Feed[transcript.Matched](peer, data, opts...)
		require.NotErrorIs(t, got.Err(), actiontest.ErrRunaway)
		if err := got.Err(); err != nil {
			require.Equal(t, action.Fail[transcript.Matched](err), peer.Next(), "terminal")
			_ = err.Error()
		}
		_ = peer.Done()
	})
}
