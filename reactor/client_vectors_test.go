package reactor

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// clientDifferences lists the client vector steps ("name#step") where we
// differ from Mercurial on purpose, and what we do there instead.
var clientDifferences = map[string]string{
	// Mercurial raises ProgrammingError("unhandled frame type"); we deliver
	// text output and progress, and fail on frames a server never sends.
	"text output at client#1":       "deliver:text-output",
	"progress at client#1":          "deliver:progress",
	"command request at client#1":   "error:unhandled frame type: 1",
	"error response malformed#1":    "error:error decoding CBOR from error response frame: ",
	"error response missing type#1": "error:error response frame has no type",
	// Mercurial lets zlib.error escape; we report an Error.
	"zlib bad data#2": "error:error decoding zlib stream 2: ",
}

// TestClientVectors replays every client vector Mercurial 6.3 produced:
// request frames must match byte for byte; delivered responses, errors and
// no-ops must match. Data decoded from zlib streams is compared frame by
// frame (both decode as soon as bytes arrive); from zstd streams per
// request at its end, since the decoders hand out output at different
// points within blocks.
func TestClientVectors(t *testing.T) {
	vf := loadVectors(t)
	used := map[string]bool{}
	for _, feed := range []bool{false, true} {
		for _, v := range vf.Client {
			t.Run(fmt.Sprintf("%s/feed=%v", v.Name, feed), func(t *testing.T) {
				replayClient(t, v, used, feed)
			})
		}
	}
	for k := range clientDifferences {
		require.True(t, used[k], "difference %q matched no vector step", k)
	}
}

func replayClient(t *testing.T, v clientVector, used map[string]bool, feed bool) {
	cfg := ClientMachineConfig{MultipleSends: v.HasMultipleSend, Immediate: !v.BufferSends}
	if encs, ok := value(t, v.Encoders, false).([]any); ok {
		for _, e := range encs {
			cfg.ContentEncodings = append(cfg.ContentEncodings, string(e.([]byte)))
		}
	}
	c := NewClientMachine(cfg)
	compressed := map[uint8]bool{}
	var wantData, gotData map[uint16][]byte = map[uint16][]byte{}, map[uint16][]byte{}
	var firstErr error
	for i, st := range v.Steps {
		msg := fmt.Sprintf("step %d %s %s", i, st.Op, st.Human)
		key := fmt.Sprintf("%s#%d", v.Name, i)
		res := st.Result
		switch st.Op {
		case "call", "flush":
			var rid uint16
			var err error
			if st.Op == "call" {
				req := Request{Name: string(value(t, st.Name, false).([]byte)), Redirect: value(t, st.Redirect, false)}
				if d := value(t, st.Data, false); d != nil {
					req.Data = d.([]byte)
				}
				for k, x := range value(t, st.Args, false).(map[any]any) {
					if req.Args == nil {
						req.Args = map[hgcbor.Bytes]any{}
					}
					req.Args[k.(hgcbor.Bytes)] = x
				}
				rid, err = c.CallCommand(req)
			} else {
				err = c.FlushCommands()
			}
			got := actiontest.Drain(c)
			if res.Action == "exception" {
				want := stringOf(t, res.Message)
				require.Error(t, err, msg)
				require.Contains(t, err.Error(), want, msg)
				require.Empty(t, got, msg)
				continue
			}
			require.NoError(t, err, msg)
			if st.Op == "call" {
				require.Equal(t, uint16(res.RequestID), rid, msg)
			}
			if res.Action == "noop" {
				require.Empty(t, got, msg)
				continue
			}
			require.Equal(t, "sendframes", res.Action, msg)
			var want []byte
			for _, h := range res.Frames {
				want = append(want, mustHex(t, h)...)
			}
			require.Len(t, got, 1, msg)
			require.Equal(t, action.KindSend, got[0].Kind)
			require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got[0].Bytes), msg)
			continue
		}
		require.Equal(t, "frame", st.Op)
		f := frameFromHex(t, st.Hex)
		if f.Type == frame.TypeStreamSettings && f.Flags == frame.FlagStreamSettingsEOS {
			if v, err := hgcbor.Unmarshal(f.Payload); err == nil {
				if b, ok := v.([]byte); ok {
					// zlib output comes as soon as it decodes, in Mercurial
					// (zlib itself) and here alike, so it is compared frame by
					// frame; zstd's only at the end of each response.
					compressed[f.StreamID] = string(b) == EncodingZstd8MB
				}
			}
		}
		if feed {
			c.Feed(mustHex(t, st.Hex))
		} else {
			c.OnFrame(f)
		}
		got := actiontest.Drain(c)
		if firstErr != nil {
			// On purpose: an Error is terminal (Mercurial's client carries on).
			require.Len(t, got, 1, msg)
			require.Equal(t, firstErr, got[0].Err, msg)
			continue
		}
		if diff, ok := clientDifferences[key]; ok {
			used[key] = true
			kind, arg, _ := strings.Cut(diff, ":")
			require.Len(t, got, 1, msg)
			switch kind {
			case "deliver":
				require.Equal(t, action.KindDeliver, got[0].Kind, "%s: %v", msg, got[0])
				require.Equal(t, arg, got[0].Value.Kind.String(), msg)
				require.Equal(t, f.Payload, got[0].Value.Data, msg)
			case "error":
				require.Equal(t, action.KindError, got[0].Kind, "%s: %v", msg, got[0])
				require.True(t, strings.HasPrefix(unprefixed(t, got[0].Err.Error()), arg), "%s: %q", msg, got[0].Err)
				firstErr = got[0].Err
			}
			continue
		}
		require.NotEqual(t, "exception", res.Action, "%s: Mercurial raised %s %s; no difference declared", msg, res.Type, res.Message)
		switch res.Action {
		case "noop":
			require.Empty(t, got, msg)
		case "error":
			require.Len(t, got, 1, msg)
			if res.RequestID != 0 {
				// An error-response frame: Mercurial's "error" action for one
				// request; we deliver it, since the connection carries on.
				require.Equal(t, action.KindDeliver, got[0].Kind, "%s: %v", msg, got[0])
				r := got[0].Value
				require.Equal(t, ResponseKindError, r.Kind)
				require.Equal(t, uint16(res.RequestID), r.RequestID)
				sameValue(t, value(t, res.Type, false), []byte(r.Error.Type), msg)
				sameValue(t, value(t, res.Message, false), r.Error.Message, msg)
				break
			}
			require.Equal(t, action.KindError, got[0].Kind, "%s: %v", msg, got[0])
			checkMessage(t, stringOf(t, res.Message), got[0].Err.Error(), msg)
			require.ErrorIs(t, got[0].Err, ErrProtocol)
			firstErr = got[0].Err
		case "responsedata":
			require.Len(t, got, 1, msg)
			require.Equal(t, action.KindDeliver, got[0].Kind, "%s: %v", msg, got[0])
			r := got[0].Value
			require.Equal(t, ResponseKindData, r.Kind)
			require.Equal(t, uint16(res.RequestID), r.RequestID, msg)
			require.Equal(t, res.ExpectMore, r.More, msg)
			require.Equal(t, res.EOS, r.EOS, msg)
			want := mustHex(t, stringOf(t, res.Data))
			if compressed[f.StreamID] && f.StreamFlags&frame.StreamFlagEncoded != 0 || len(wantData[r.RequestID]) > 0 {
				wantData[r.RequestID] = append(wantData[r.RequestID], want...)
				gotData[r.RequestID] = append(gotData[r.RequestID], r.Data...)
				if r.EOS {
					require.True(t, bytes.Equal(wantData[r.RequestID], gotData[r.RequestID]), "%s: decoded response %x, want %x", msg, gotData[r.RequestID], wantData[r.RequestID])
				}
				break
			}
			require.Equal(t, want, append([]byte{}, r.Data...), msg)
		default:
			t.Fatalf("%s: unknown action %q", msg, res.Action)
		}
	}
}
