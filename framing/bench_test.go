package framing

import (
	"fmt"
	"testing"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

var benchSizes = []int{0, 64, 32 << 10}

func benchFrame(size int) frame.Frame {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	return frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagEncoded,
		Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseContinuation, Payload: payload}
}

// BenchmarkDecode decodes one frame per op from a buffer holding a whole
// frame: Feed, Next (Deliver), Next (WantMore).
func BenchmarkDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := benchFrame(size)
			wire := f.Append(nil)
			var d Decoder
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				d.Feed(wire)
				if a := d.Next(); a.Kind != action.KindDeliver {
					b.Fatal(a)
				}
				if a := d.Next(); a.Kind != action.KindWantMore {
					b.Fatal(a)
				}
			}
		})
	}
}

// BenchmarkDecodeFrame is BenchmarkDecode through NextFrame: Feed,
// NextFrame (the frame), NextFrame (nil).
func BenchmarkDecodeFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := benchFrame(size)
			wire := f.Append(nil)
			var d Decoder
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				d.Feed(wire)
				if got, err := d.NextFrame(); got == nil || len(got.Payload) != size {
					b.Fatal(got, err)
				}
				if got, err := d.NextFrame(); got != nil || err != nil {
					b.Fatal(got, err)
				}
			}
		})
	}
}

// BenchmarkDecodeStream decodes one frame per op out of a buffer holding
// many back to back: the cost of decoding a frame from a buffer, through
// Next (the action.Machine method) and through NextFrame.
func BenchmarkDecodeStream(b *testing.B) {
	for _, api := range []string{"Next", "NextFrame"} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dB", api, size), func(b *testing.B) {
				f := benchFrame(size)
				const n = 64
				var wire []byte
				for range n {
					wire = f.Append(wire)
				}
				var d Decoder
				b.SetBytes(int64(f.Size()))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i == 0 {
						d.Feed(wire)
					}
					if api == "Next" {
						if a := d.Next(); a.Kind != action.KindDeliver {
							b.Fatal(a)
						}
					} else if f, err := d.NextFrame(); f == nil || err != nil {
						b.Fatal(f, err)
					}
					if i++; i == n {
						i = 0
					}
				}
			})
		}
	}
}

// BenchmarkDecodeSplit decodes one frame per op fed in two pieces cut in
// the middle, so the decoder copies it into its buffer.
func BenchmarkDecodeSplit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := benchFrame(size)
			wire := f.Append(nil)
			half := len(wire) / 2
			var d Decoder
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				d.Feed(wire[:half])
				if a := d.Next(); a.Kind != action.KindWantMore {
					b.Fatal(a)
				}
				d.Feed(wire[half:])
				if a := d.Next(); a.Kind != action.KindDeliver {
					b.Fatal(a)
				}
				if a := d.Next(); a.Kind != action.KindWantMore {
					b.Fatal(a)
				}
			}
		})
	}
}

// BenchmarkEncode appends one frame per op into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := benchFrame(size)
			buf := make([]byte, 0, f.Size())
			b.SetBytes(int64(f.Size()))
			b.ReportAllocs()
			for b.Loop() {
				buf = f.Append(buf[:0])
			}
		})
	}
}

// BenchmarkBuildResponse builds a typical command response per op: the
// status header, three CBOR values coalesced into one frame, end of stream.
func BenchmarkBuildResponse(b *testing.B) {
	s, e, chunks := typicalResponseSetup()
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		var err error
		if out, err = appendTypicalResponse(out[:0], s, e, chunks); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildCommandRequest builds a command request per op, without and
// with arguments.
func BenchmarkBuildCommandRequest(b *testing.B) {
	for _, tc := range []struct {
		name string
		req  CommandRequest
	}{
		{"no-args", CommandRequest{Name: "heads"}},
		{"args", CommandRequest{Name: "known", Args: map[hgcbor.Bytes]any{"nodes": []any{pattern(20), pattern(20)}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := NewOutputStream(1, OutputStreamConfig{})
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				var err error
				if out, err = s.AppendCommandRequest(out[:0], 1, tc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEmitter sends one chunk of response data per op through a
// ResponseEmitter, which coalesces them into full frames.
func BenchmarkEmitter(b *testing.B) {
	for _, size := range benchSizes[1:] {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			_, e, _ := typicalResponseSetup()
			chunk := pattern(size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				var err error
				if out, err = e.Send(out[:0], chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTextOutput builds one text-output frame per op.
func BenchmarkTextOutput(b *testing.B) {
	s := NewOutputStream(2, OutputStreamConfig{})
	atoms := []TextAtom{{Format: "added %s changesets with %s changes to %s files\n", Args: []string{"3", "12", "5"}, Labels: []string{"ui.status"}}}
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		var err error
		if out, err = s.AppendTextOutput(out[:0], 1, atoms); err != nil {
			b.Fatal(err)
		}
	}
}
