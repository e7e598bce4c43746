package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"golang.org/x/net/http2"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
)

// FrameSizes are the payload sizes of the frame codec comparisons.
var FrameSizes = []int{0, 64, 32 << 10}

func payloadOf(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func sizeName(size int) string {
	if size >= 1<<10 && size%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", size>>10)
	}
	return fmt.Sprintf("%d B", size)
}

// Peer names used by Targets.
const (
	peerHgReadframe = "Mercurial readframe"
	peerHTTP2       = "http2.Framer.ReadFrame"
	peerHTTP2Reuse  = "http2.Framer.ReadFrame, SetReuseFrames"
)

// FrameComparisons pits frame.Frame.Append and framing.Decoder against
// x/net/http2's Framer (WriteData; ReadFrame with and without frame reuse)
// and Mercurial's readframe on the same payloads.
//
// Both encoders append into a reused buffer (http2's Framer builds the frame
// in its own buffer and writes it to io.Discard). Every decoder reads one
// whole frame per op from memory: ours from a fed slice (zero-copy), the
// Framer from a bytes.Reader through io.ReadFull into its read buffer — the
// copy is part of its design, so it is part of its cost — and readframe from
// an io.BytesIO rewound before each read.
func FrameComparisons() []Comparison {
	hg := &hgPeer{}
	var cs []Comparison
	for _, size := range FrameSizes {
		payload := payloadOf(size)
		cs = append(cs, Comparison{
			Group: "frame", Name: "encode " + sizeName(size),
			Ours:   Side{"frame.Frame.Append", goSide(func(b *testing.B) { benchFrameEncode(b, payload) })},
			Peers:  []Side{{"http2.Framer.WriteData", goSide(func(b *testing.B) { benchHTTP2Encode(b, payload) })}},
			Metric: "cpu",
		}, Comparison{
			Group: "frame", Name: "decode " + sizeName(size),
			Ours: Side{"framing.Decoder.NextFrame", goSide(func(b *testing.B) { benchFrameDecode(b, payload) })},
			Peers: []Side{
				{peerHTTP2, goSide(func(b *testing.B) { benchHTTP2Decode(b, payload, false) })},
				{peerHTTP2Reuse, goSide(func(b *testing.B) { benchHTTP2Decode(b, payload, true) })},
				{peerHgReadframe, hg.side(fmt.Sprintf("readframe:%d", size))},
			},
			Metric: "cpu",
		}, Comparison{
			// The same decoder driven as an action.Machine: Next returns an
			// 80-byte Action, which the caller copies out of the result
			// area right after Next wrote it field by field, so this row
			// also shows what the machine interface costs.
			Group: "frame", Name: "decode " + sizeName(size) + " as a machine",
			Ours:   Side{"framing.Decoder.Next", goSide(func(b *testing.B) { benchFrameMachine(b, payload) })},
			Peers:  []Side{{peerHgReadframe, hg.side(fmt.Sprintf("readframe:%d", size))}},
			Metric: "cpu",
		})
	}
	return cs
}

func goSide(f func(b *testing.B)) func(context.Context, Config) (Sample, error) {
	return func(_ context.Context, cfg Config) (Sample, error) { return GoBench(cfg, f) }
}

func benchFrame(payload []byte) frame.Frame {
	return frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin,
		Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseContinuation, Payload: payload}
}

func benchFrameEncode(b *testing.B, payload []byte) {
	f := benchFrame(payload)
	buf := make([]byte, 0, f.Size())
	b.SetBytes(int64(f.Size()))
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		buf = f.Append(buf[:0])
	}
	stop()
	if len(buf) != f.Size() {
		b.Fatalf("encoded %d bytes, want %d", len(buf), f.Size())
	}
}

func benchHTTP2Encode(b *testing.B, payload []byte) {
	fr := http2.NewFramer(io.Discard, nil)
	b.SetBytes(int64(9 + len(payload)))
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		if err := fr.WriteData(1, false, payload); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

// benchFrameDecode decodes one whole frame per op through NextFrame: Feed,
// NextFrame (the frame), NextFrame (nil: more input needed).
func benchFrameDecode(b *testing.B, payload []byte) {
	f := benchFrame(payload)
	wire := f.Append(nil)
	var d framing.Decoder
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		d.Feed(wire)
		if got, err := d.NextFrame(); got == nil || len(got.Payload) != len(payload) || got.RequestID != f.RequestID {
			b.Fatal(got, err)
		}
		if got, err := d.NextFrame(); got != nil || err != nil {
			b.Fatal(got, err)
		}
	}
	stop()
}

// benchFrameMachine is benchFrameDecode through the action.Machine
// interface: Feed, Next (Deliver), Next (WantMore).
func benchFrameMachine(b *testing.B, payload []byte) {
	f := benchFrame(payload)
	wire := f.Append(nil)
	var d framing.Decoder
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		d.Feed(wire)
		if a := d.Next(); a.Kind != action.KindDeliver || len(a.Value.Payload) != len(payload) {
			b.Fatal(a)
		}
		if a := d.Next(); a.Kind != action.KindWantMore {
			b.Fatal(a)
		}
	}
	stop()
}

func benchHTTP2Decode(b *testing.B, payload []byte, reuse bool) {
	var w bytes.Buffer
	if err := http2.NewFramer(&w, nil).WriteData(1, false, payload); err != nil {
		b.Fatal(err)
	}
	wire := w.Bytes()
	r := bytes.NewReader(wire)
	fr := http2.NewFramer(nil, r)
	fr.SetMaxReadFrameSize(1 << 20)
	if reuse {
		fr.SetReuseFrames()
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		r.Reset(wire)
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if df, ok := f.(*http2.DataFrame); !ok || len(df.Data()) != len(payload) {
			b.Fatalf("read %v", f)
		}
	}
	stop()
}
