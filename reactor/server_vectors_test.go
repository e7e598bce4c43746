package reactor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// serverDifferences lists the server vectors where we differ from
// Mercurial on purpose, keyed by vector name: what our reactor does at the
// step where Mercurial raises (or stays silent). Every entry must be used.
var serverDifferences = map[string]string{
	// Mercurial lets a decoding exception escape; we report an Error.
	"malformed cbor in request": "error:error decoding CBOR from command request: ",
	"empty request payload":     "error:command request frame did not contain CBOR data",
	"integer request payload":   `error:command request missing "name" field`,
	// Mercurial's decoder raises on text strings; we report an Error.
	"text command name": "error:error decoding CBOR from command request: hgcbor: text strings are not supported",
	// Mercurial raises ProgrammingError on encoded client frames.
	"encoded frame from client": "error:received encoded frame on stream 1: decoding client streams is not supported",
	// Mercurial emits the frames then raises KeyError; we refuse up front.
	"response for inactive request":     "notactive",
	"server error for inactive request": "notactive",
	// Mercurial raises ProgrammingError building the response; we send it
	// unencoded (no content encoding was agreed).
	"client advertises only unknown encodings": "unencoded",
	"client advertises no encodings":           "unencoded",
	// Mercurial forgets partially received requests at input end.
	"missing command data frame":   "incomplete:[1]",
	"partial command at input end": "incomplete:[1]",
}

func responseObjects(t testing.TB, raws []json.RawMessage) []any {
	var objs []any
	for _, raw := range raws {
		var d map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &d))
		switch {
		case d["value"] != nil:
			objs = append(objs, value(t, d["value"], false))
		case d["encoded"] != nil:
			var h string
			require.NoError(t, json.Unmarshal(d["encoded"], &h))
			objs = append(objs, EncodedResponse(mustHex(t, h)))
		case d["indefinite"] != nil:
			var hs []string
			require.NoError(t, json.Unmarshal(d["indefinite"], &hs))
			var ib IndefiniteBytes
			for _, h := range hs {
				ib = append(ib, mustHex(t, h))
			}
			objs = append(objs, ib)
		case d["alternate"] != nil:
			var a map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(d["alternate"], &a))
			loc := &framing.AlternateLocation{URL: string(value(t, a["url"], false).([]byte)), MediaType: string(value(t, a["mediatype"], false).([]byte))}
			loc.Size = value(t, a["size"], false)
			loc.FullHashes = value(t, a["fullhashes"], false)
			loc.FullHashSeed = value(t, a["fullhashseed"], false)
			loc.ServerDERCerts = value(t, a["serverdercerts"], false)
			loc.ServerCADERCerts = value(t, a["servercadercerts"], false)
			objs = append(objs, loc)
		case d["commanderror"] != nil:
			var msg string
			require.NoError(t, json.Unmarshal(d["commanderror"], &msg))
			args, _ := value(t, d["args"], false).([]any)
			objs = append(objs, &CommandError{Message: msg, Args: args})
		case d["raise"] != nil:
			var msg string
			require.NoError(t, json.Unmarshal(d["raise"], &msg))
			objs = append(objs, errors.New(msg))
		default:
			t.Fatalf("unknown response object %s", raw)
		}
	}
	return objs
}

func stringOf(t testing.TB, raw json.RawMessage) string {
	var s string
	require.NoError(t, json.Unmarshal(raw, &s))
	return s
}

// TestServerVectors replays every server vector Mercurial 6.3 produced and
// compares every action: kind, frame bytes (or, on compressed streams, frame
// structure and decoded content), delivered commands and error messages.
func TestServerVectors(t *testing.T) {
	vf := loadVectors(t)
	used := map[string]bool{}
	for _, feed := range []bool{false, true} {
		for _, v := range vf.Server {
			t.Run(fmt.Sprintf("%s/feed=%v", v.Name, feed), func(t *testing.T) {
				replayServer(t, v, used, feed)
			})
		}
	}
	for name := range serverDifferences {
		require.True(t, used[name], "difference %q matched no vector step", name)
	}
}

func replayServer(t *testing.T, v serverVector, used map[string]bool, feed bool) {
	r := NewServerMachine(ServerMachineConfig{DeferOutput: v.DeferOutput})
	streams := map[int]*OutputStream{}
	logs := map[uint8]*streamLog{}
	var firstErr error
	for i, st := range v.Steps {
		msg := fmt.Sprintf("step %d %s %s", i, st.Op, st.Human)
		var callErr error
		switch st.Op {
		case "frame":
			if feed {
				r.Feed(mustHex(t, st.Hex))
			} else {
				r.OnFrame(frameFromHex(t, st.Hex))
			}
		case "makeoutputstream":
			s := r.NewOutputStream()
			require.Equal(t, st.Result.StreamID, int(s.ID()), msg)
			streams[int(s.ID())] = s
			continue
		case "objects":
			callErr = r.RespondObjects(streams[st.Stream], uint16(st.Request), responseObjects(t, st.Objects)...)
		case "servererror":
			callErr = r.RespondServerError(streams[st.Stream], uint16(st.Request), stringOf(t, st.Message))
		case "commanderror":
			args, _ := value(t, st.Args, false).([]any)
			callErr = r.RespondCommandError(streams[st.Stream], uint16(st.Request), stringOf(t, st.Message), args)
		case "textoutput":
			var atoms []framing.TextAtom
			for _, a := range st.Atoms {
				atom := framing.TextAtom{Format: string(value(t, a[0], false).([]byte))}
				for _, x := range value(t, a[1], false).([]any) {
					atom.Args = append(atom.Args, string(x.([]byte)))
				}
				for _, x := range value(t, a[2], false).([]any) {
					atom.Labels = append(atom.Labels, string(x.([]byte)))
				}
				atoms = append(atoms, atom)
			}
			callErr = r.SendTextOutput(streams[st.Stream], uint16(st.Request), atoms)
		case "eof":
			r.FeedEOF()
		default:
			t.Fatalf("unknown op %q", st.Op)
		}
		got := actiontest.Drain(r)
		if n := len(got); n > 0 && got[n-1].Err == io.EOF {
			// We differ on purpose: once its input ended and every
			// request is answered, the reactor ends with io.EOF, so a
			// driver's loop ends; Mercurial's reactor has no end.
			require.Equal(t, "eof", st.Op, "%s: io.EOF before the input ended", msg)
			got = got[:n-1]
		}

		if firstErr != nil {
			// We differ on purpose: after an Error the reactor is terminal
			// and repeats that Error, where Mercurial answers later frames
			// with "server already errored" or a new error.
			require.Len(t, got, 1, msg)
			require.Equal(t, action.KindError, got[0].Kind, msg)
			require.Equal(t, firstErr, got[0].Err, msg)
			continue
		}

		res := st.Result
		if res.Action == "exception" || (st.Op == "eof" && serverDifferences[v.Name] != "") {
			diff, ok := serverDifferences[v.Name]
			require.True(t, ok, "%s: Mercurial raised %s %s; no difference is declared", msg, res.Type, res.Message)
			used[v.Name] = true
			checkServerDifference(t, diff, callErr, got, logs, msg)
			if n := len(got); n > 0 && got[n-1].Kind == action.KindError {
				firstErr = got[n-1].Err
			}
			continue
		}
		require.NoError(t, callErr, msg)
		switch res.Action {
		case "runcommand":
			require.Len(t, got, 1, msg)
			require.Equal(t, action.KindDeliver, got[0].Kind, "%s: %v", msg, got[0])
			c := got[0].Value
			require.Equal(t, uint16(res.RequestID), c.RequestID, msg)
			sameValue(t, value(t, res.Command, false), []byte(c.Name), msg+" name")
			sameValue(t, value(t, res.Args, false), c.Args.Map(), msg+" args")
			sameValue(t, value(t, res.Redirect, false), c.Redirect, msg+" redirect")
			want := value(t, res.Data, false)
			if want == nil {
				require.Nil(t, c.Data, msg)
			} else {
				require.NotNil(t, c.Data, msg)
				require.Equal(t, want, c.Data, msg)
			}
		case "wantframe", "noop":
			require.Empty(t, got, msg)
		case "error":
			require.Len(t, got, 1, msg)
			require.Equal(t, action.KindError, got[0].Kind, "%s: %v", msg, got[0])
			checkMessage(t, stringOf(t, res.Message), got[0].Err.Error(), msg)
			require.ErrorIs(t, got[0].Err, ErrProtocol)
			firstErr = got[0].Err
		case "sendframes":
			if v.DeferOutput && st.Op != "eof" {
				require.Empty(t, got, msg)
				break
			}
			if len(res.Frames) == 0 {
				require.Empty(t, got, msg)
				break
			}
			require.Len(t, got, 1, "%s: one Send per step", msg)
			compareFrames(t, res.Frames, got, logs, msg)
		default:
			t.Fatalf("%s: unknown action %q", msg, res.Action)
		}
		require.Equal(t, st.State, r.State().String(), msg)
	}
	for id, lg := range logs {
		if lg.encoding != EncodingIdentity && len(lg.want) > 0 {
			require.NotEmpty(t, decodeStream(t, lg.encoding, lg.want), "stream %d", id)
		}
		require.Equal(t, decodeStream(t, lg.encoding, lg.want), decodeStream(t, lg.encoding, lg.got), "stream %d decoded content", id)
	}
}

// checkMessage compares error messages. Where Mercurial's message ends in a
// CBOR decoder's own words, only the part before them is compared.
func checkMessage(t testing.TB, want, got, msg string) {
	t.Helper()
	got = unprefixed(t, got)
	const cborPrefix = "error decoding CBOR from "
	if strings.HasPrefix(want, cborPrefix) {
		i := strings.Index(want, ": ")
		require.True(t, strings.HasPrefix(got, want[:i+2]), "%s: want prefix %q, got %q", msg, want[:i+2], got)
		return
	}
	require.Equal(t, want, got, msg)
}

func checkServerDifference(t *testing.T, diff string, callErr error, got []action.Action[Command], logs map[uint8]*streamLog, msg string) {
	kind, arg, _ := strings.Cut(diff, ":")
	switch kind {
	case "error":
		require.NoError(t, callErr, msg)
		require.NotEmpty(t, got, msg)
		last := got[len(got)-1]
		require.Equal(t, action.KindError, last.Kind, "%s: %v", msg, got)
		require.True(t, strings.HasPrefix(unprefixed(t, last.Err.Error()), arg), "%s: got %q, want prefix %q", msg, last.Err, arg)
		require.ErrorIs(t, last.Err, ErrProtocol)
	case "notactive":
		require.ErrorIs(t, callErr, ErrNotActive, msg)
		require.Empty(t, got, msg)
	case "unencoded":
		require.NoError(t, callErr, msg)
		require.Len(t, got, 1, msg)
		frames := parseFrames(t, got[0].Bytes)
		var payload []byte
		for _, f := range frames {
			require.Zero(t, f.StreamFlags&4, "%s: %v is encoded", msg, f)
			payload = append(payload, f.Payload...)
		}
		vals, err := hgcbor.DecodeAll(payload)
		require.NoError(t, err)
		require.Len(t, vals, 2)
		sameValue(t, map[any]any{hgcbor.Bytes("status"): []byte("ok")}, vals[0], msg)
		sameValue(t, []byte("response"), vals[1], msg)
	case "incomplete":
		require.NotEmpty(t, got, msg)
		last := got[len(got)-1]
		require.Equal(t, action.KindError, last.Kind, msg)
		var ie *IncompleteError
		require.ErrorAs(t, last.Err, &ie)
		require.Equal(t, arg, fmt.Sprint(ie.RequestIDs), msg)
	default:
		t.Fatalf("unknown difference %q", diff)
	}
}

// unprefixed returns an error message of this package without its
// "reactor: " prefix, which it must have: the rest is Mercurial's text.
func unprefixed(t testing.TB, msg string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(msg, "reactor: ")
	require.True(t, ok, "error %q lacks the reactor: prefix", msg)
	return rest
}
