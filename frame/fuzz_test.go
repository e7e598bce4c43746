package frame

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseHeader: any 8 bytes either parse into a header that encodes back
// to the same bytes, or are rejected with a *HeaderError; nothing panics.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 1, 1, 0x11})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x9f})
	f.Add([]byte{0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < HeaderSize {
			return
		}
		h, err := ParseHeader(data)
		if err != nil {
			var he *HeaderError
			require.True(t, errors.As(err, &he), "error %v is not a *HeaderError", err)
			return
		}
		require.Equal(t, data[:HeaderSize], AppendHeader(nil, h))
		require.Equal(t, int(data[0])|int(data[1])<<8|int(data[2])<<16, h.Length)
		fr := Frame{RequestID: h.RequestID, StreamID: h.StreamID, StreamFlags: h.StreamFlags,
			Type: h.Type, Flags: h.Flags}
		require.NoError(t, fr.Validate())
	})
}

// FuzzParseHuman: nothing panics; whatever parses formats back to a string
// that parses to the same frame.
func FuzzParseHuman(f *testing.F) {
	raw, err := os.ReadFile(vectorsFile)
	require.NoError(f, err)
	var v struct {
		Human []struct {
			Human string `json:"human"`
			Fill  *fill  `json:"fill"`
		} `json:"human"`
	}
	require.NoError(f, json.Unmarshal(raw, &v))
	for _, vec := range v.Human {
		if vec.Fill == nil {
			f.Add(vec.Human)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		fr, err := ParseHuman(s)
		if err != nil {
			var he *HumanError
			require.True(t, errors.As(err, &he), "error %v is not a *HumanError", err)
			return
		}
		out := FormatHuman(fr)
		back, err := ParseHuman(out)
		require.NoError(t, err, "FormatHuman gave %q", out)
		require.Equal(t, fr, back)
		require.Equal(t, out, FormatHuman(back))
	})
}
