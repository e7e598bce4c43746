package framing

import (
	"bytes"
	"testing"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
)

// fuzzLimit keeps the fuzzer's payload limit small so it reaches it.
const fuzzLimit = 4096

// FuzzDecoder feeds arbitrary bytes in arbitrary pieces (splits[i]+1 bytes
// each) and checks that the decoder never panics, never holds more than one
// frame, delivers frames whose encoding is exactly the bytes they came from,
// and delivers the same frames and error whatever the split.
func FuzzDecoder(f *testing.F) {
	for _, fr := range sampleFrames() {
		if len(fr.Payload) > 100 {
			fr.Payload = fr.Payload[:100]
		}
		f.Add(fr.Append(nil), []byte{0, 3, 7})
	}
	f.Add(encodeFrames(sampleFrames()[:3]), []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 1, 0, 1, 0, 0x32}, []byte{1})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 0x40}, []byte{})
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		whole, wholeErr := fuzzDecode(t, data, nil)
		split, splitErr := fuzzDecode(t, data, splits)
		if (wholeErr == nil) != (splitErr == nil) || wholeErr != nil && wholeErr.Error() != splitErr.Error() {
			t.Fatalf("error depends on split: whole %v, split %v", wholeErr, splitErr)
		}
		if !bytes.Equal(whole, split) {
			t.Fatalf("frames depend on split:\nwhole %x\nsplit %x", whole, split)
		}
		// Re-encoding the frames gives back the bytes they were read from.
		if !bytes.HasPrefix(data, whole) {
			t.Fatalf("re-encoded frames are not a prefix of the input:\ninput %x\nframes %x", data, whole)
		}
		if wholeErr == nil && len(whole) != len(data) {
			t.Fatalf("no error but %d of %d bytes decoded", len(whole), len(data))
		}
	})
}

// fuzzDecode decodes data fed in pieces and returns the re-encoding of every
// delivered frame and the error that ended decoding (nil at a clean end).
func fuzzDecode(t *testing.T, data, splits []byte) ([]byte, error) {
	d := NewDecoder(DecoderConfig{MaxPayload: fuzzLimit})
	var out []byte
	drain := func() error {
		for {
			a := d.Next()
			if d.Buffered() > frame.HeaderSize+fuzzLimit+len(data) || cap(d.buf) > 2*(frame.HeaderSize+fuzzLimit) {
				t.Fatalf("decoder holds %d bytes in a buffer of %d", d.Buffered(), cap(d.buf))
			}
			switch a.Kind {
			case action.Deliver:
				if len(a.Value.Payload) > fuzzLimit {
					t.Fatalf("delivered a %d-byte payload over the limit", len(a.Value.Payload))
				}
				out = a.Value.Append(out)
			case action.WantMore:
				return nil
			case action.Error:
				if again := d.Next(); again.Kind != action.Error || again.Err != a.Err {
					t.Fatalf("not terminal after %v: %v", a.Err, again)
				}
				return a.Err
			}
		}
	}
	for len(data) > 0 {
		n := len(data)
		if len(splits) > 0 {
			n = min(n, int(splits[0])+1)
			splits = splits[1:]
		}
		piece := bytes.Clone(data[:n])
		data = data[n:]
		d.Feed(piece)
		if err := drain(); err != nil {
			return out, err
		}
		clear(piece) // the caller reuses its buffer
	}
	d.FeedEOF()
	return out, drain()
}
