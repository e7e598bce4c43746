package hgcbor_test

import (
	"testing"

	"github.com/wirereactor/wirereactor/hgcbor"
)

var sink []byte

func benchEncode(b *testing.B, v any) {
	buf := make([]byte, 0, 4096)
	out, err := hgcbor.Append(buf, v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, _ = hgcbor.Append(buf[:0], v)
	}
	sink = out
}

// The values Mercurial's servers encode on every response.
func BenchmarkEncodeStatusOK(b *testing.B) {
	benchEncode(b, map[any]any{hgcbor.Bytes("status"): hgcbor.Bytes("ok")})
}

func BenchmarkEncodeStatusOKBytesMap(b *testing.B) {
	benchEncode(b, map[hgcbor.Bytes]any{"status": hgcbor.Bytes("ok")})
}

func BenchmarkEncodeCommandRequest(b *testing.B) {
	benchEncode(b, map[any]any{
		hgcbor.Bytes("name"): hgcbor.Bytes("heads"),
		hgcbor.Bytes("args"): map[any]any{hgcbor.Bytes("publiconly"): true, hgcbor.Bytes("namespace"): hgcbor.Bytes("bookmarks")},
	})
}

func BenchmarkEncodeErrorResponse(b *testing.B) {
	benchEncode(b, map[hgcbor.Bytes]any{
		"status": hgcbor.Bytes("error"),
		"error": map[hgcbor.Bytes]any{"message": []any{map[hgcbor.Bytes]any{
			"msg":  hgcbor.Bytes("unknown command: %s"),
			"args": []any{hgcbor.Bytes("foo")},
		}}},
	})
}

func BenchmarkEncodeLargeMap(b *testing.B) { benchEncode(b, bigMap(40)) }

func benchDecode(b *testing.B, v any) {
	in, err := hgcbor.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hgcbor.Unmarshal(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStatusOK(b *testing.B) {
	benchDecode(b, map[hgcbor.Bytes]any{"status": hgcbor.Bytes("ok")})
}

func BenchmarkDecodeCommandRequest(b *testing.B) {
	benchDecode(b, map[hgcbor.Bytes]any{
		"name": hgcbor.Bytes("heads"),
		"args": map[hgcbor.Bytes]any{"publiconly": true, "namespace": hgcbor.Bytes("bookmarks")},
	})
}

func BenchmarkDecoderStream(b *testing.B) {
	in, _ := hexDecode(streamInput)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var d hgcbor.Decoder
	for b.Loop() {
		d.Feed(in)
		for {
			_, ok, err := d.Next()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
		}
	}
}
