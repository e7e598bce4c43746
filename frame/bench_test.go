package frame

import (
	"fmt"
	"testing"
)

var (
	headerSink Header
	bytesSink  []byte
)

func BenchmarkParseHeader(b *testing.B) {
	buf := AppendHeader(nil, Header{Length: 64, RequestID: 1, StreamID: 1, StreamFlags: StreamFlagBegin,
		Type: TypeCommandResponse, Flags: FlagCommandResponseEOS})
	b.SetBytes(HeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		h, err := ParseHeader(buf)
		if err != nil {
			b.Fatal(err)
		}
		headerSink = h
	}
}

func BenchmarkFrameAppend(b *testing.B) {
	for _, size := range []int{0, 64, 32 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := Frame{RequestID: 1, StreamID: 1, Type: TypeCommandResponse,
				Flags: FlagCommandResponseContinuation, Payload: make([]byte, size)}
			dst := make([]byte, 0, f.Size())
			b.SetBytes(int64(f.Size()))
			b.ReportAllocs()
			for b.Loop() {
				dst = f.Append(dst[:0])
			}
			bytesSink = dst
		})
	}
}

// BenchmarkDecodeFrame parses a header and slices out the payload, which is
// what decoding a frame from a buffer costs.
func BenchmarkDecodeFrame(b *testing.B) {
	for _, size := range []int{0, 64, 32 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := Frame{RequestID: 1, StreamID: 1, Type: TypeCommandResponse, Payload: make([]byte, size)}
			buf := f.Append(nil)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				h, err := ParseHeader(buf)
				if err != nil {
					b.Fatal(err)
				}
				bytesSink = buf[HeaderSize : HeaderSize+h.Length]
			}
		})
	}
}

func BenchmarkParseHuman(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHuman("1 1 stream-begin command-request new cbor:{b'name': b'heads', b'args': {b'x': [1, 2]}}"); err != nil {
			b.Fatal(err)
		}
	}
}
