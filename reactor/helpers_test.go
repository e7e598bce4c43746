package reactor

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// ffs is Mercurial's test shorthand: a frame from its human syntax.
func ffs(s string) frame.Frame { return frame.MustParseHuman(s) }

func frameBytes(lines ...string) []byte {
	var b []byte
	for _, l := range lines {
		f := ffs(l)
		b = f.Append(b)
	}
	return b
}

// pyValue evaluates a Python literal the way Mercurial's tests write values,
// into hgcbor's decoded value model.
func pyValue(t testing.TB, lit string) any {
	t.Helper()
	f, err := frame.ParseHuman("0 1 0 command-data 0 cbor:" + lit)
	require.NoError(t, err)
	v, err := hgcbor.Unmarshal(f.Payload)
	require.NoError(t, err)
	return v
}

// py renders a decoded value as a Python literal, so tests read like
// Mercurial's.
func py(v any) string { return hgcbor.PythonLiteral(v) }

func pyBytes(b []byte) string { return hgcbor.PythonLiteral(b) }

// describeCommand renders a delivered command like Mercurial's runcommand
// action.
func describeCommand(c Command) string {
	data := "None"
	if c.Data != nil {
		data = pyBytes(c.Data)
	}
	return fmt.Sprintf("run %d %s args=%s redirect=%s data=%s", c.RequestID, c.Name, py(c.Args.Map()), py(c.Redirect), data)
}

func describeResponse(r Response) string {
	switch r.Kind {
	case ResponseKindData:
		var fl []string
		if r.More {
			fl = append(fl, "more")
		}
		if r.EOS {
			fl = append(fl, "eos")
		}
		return fmt.Sprintf("data %d %s %s", r.RequestID, strings.Join(fl, "|"), pyBytes(r.Data))
	case ResponseKindError:
		return fmt.Sprintf("errorresponse %d %s %s", r.RequestID, r.Error.Type, py(r.Error.Message))
	default:
		return fmt.Sprintf("%s %d %s", r.Kind, r.RequestID, pyBytes(r.Data))
	}
}

// collect drains a machine and splits what it did into the concatenated
// Send bytes and descriptions of every other action.
func collect[T any](m actiontest.Source[T], describe func(T) string) (sent []byte, events []string) {
	for _, a := range actiontest.Drain(m) {
		switch a.Kind {
		case action.KindSend:
			sent = append(sent, a.Bytes...)
		case action.KindDeliver:
			events = append(events, describe(a.Value))
		case action.KindError:
			events = append(events, "error: "+a.Err.Error())
		}
	}
	return sent, events
}

// checkStep compares what a step did with want: "frame: <human>" lines are
// the frames sent, in order; every other line is an event.
func checkStep(t *testing.T, sent []byte, events, want []string, msg string) {
	t.Helper()
	var wantFrames []string
	var wantEvents []string
	for _, w := range want {
		if h, ok := strings.CutPrefix(w, "frame: "); ok {
			wantFrames = append(wantFrames, h)
		} else {
			wantEvents = append(wantEvents, w)
		}
	}
	require.Equal(t, wantEvents, events, msg)
	if !bytes.Equal(frameBytes(wantFrames...), sent) {
		var got []string
		for _, f := range parseFrames(t, sent) {
			got = append(got, f.String()+fmt.Sprintf(" %q", f.Payload))
		}
		t.Fatalf("%s: frames sent:\n%s\nwant:\n%s", msg, strings.Join(got, "\n"), strings.Join(wantFrames, "\n"))
	}
}

// decodeAll decodes every CBOR item of b, rejecting text strings.
func decodeAll(b []byte) ([]any, error) { return decodeAllOpts(hgcbor.DecodeOptions{}, b) }

// decodeAllOpts is decodeAll under opts' bounds.
func decodeAllOpts(opts hgcbor.DecodeOptions, b []byte) ([]any, error) {
	values, err := opts.DecodeAll(b)
	if err != nil {
		return nil, err
	}
	for _, v := range values {
		if err := checkNoText(v); err != nil {
			return nil, err
		}
	}
	return values, nil
}
