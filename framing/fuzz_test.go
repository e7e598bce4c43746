package framing

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
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
		// NextFrame, which Next partly repeats for speed, agrees with it.
		var viaNextFrame []byte
		d := NewDecoder(DecoderConfig{MaxPayload: fuzzLimit})
		d.Feed(data)
		d.FeedEOF()
		for {
			fr, err := d.NextFrame()
			if fr == nil {
				if (err == nil) != (wholeErr == nil) || err != nil && err.Error() != wholeErr.Error() {
					t.Fatalf("NextFrame ended with %v, Next with %v", err, wholeErr)
				}
				break
			}
			viaNextFrame = fr.Append(viaNextFrame)
		}
		if !bytes.Equal(whole, viaNextFrame) {
			t.Fatalf("NextFrame and Next disagree:\nNext      %x\nNextFrame %x", whole, viaNextFrame)
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
// delivered frame and the error that ended decoding (nil at a clean end,
// which Next must report as io.EOF).
func fuzzDecode(t *testing.T, data, splits []byte) ([]byte, error) {
	d := NewDecoder(DecoderConfig{MaxPayload: fuzzLimit})
	var out []byte
	lastFeed := 0 // the decoder holds at most a frame's bytes besides it
	drain := func() error {
		for {
			a := d.Next()
			if d.Buffered() > frame.HeaderSize+fuzzLimit+lastFeed || cap(d.buf) > 2*(frame.HeaderSize+fuzzLimit) {
				t.Fatalf("decoder holds %d bytes in a buffer of %d", d.Buffered(), cap(d.buf))
			}
			switch a.Kind {
			case action.KindDeliver:
				if len(a.Value.Payload) > fuzzLimit {
					t.Fatalf("delivered a %d-byte payload over the limit", len(a.Value.Payload))
				}
				out = a.Value.Append(out)
			case action.KindWantMore:
				return nil
			case action.KindError:
				if again := d.Next(); again.Kind != action.KindError || again.Err != a.Err {
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
		lastFeed = len(piece)
		if err := drain(); err != nil {
			return out, err
		}
		clear(piece) // the caller reuses its buffer
	}
	d.FeedEOF()
	err := drain()
	if err == nil {
		t.Fatal("Next said WantMore after FeedEOF; a clean end is an Error with io.EOF")
	}
	if err == io.EOF {
		return out, nil
	}
	return out, err
}

// FuzzCommandRequest builds command requests from arbitrary names,
// arguments, data and frame sizes, and checks that the frames decode back
// to them, within the frame size.
func FuzzCommandRequest(f *testing.F) {
	f.Add("heads", []byte{}, uint16(0), -1)
	f.Add("known", []byte("\x00\x01"), uint16(1), 0)
	f.Add("push", bytes.Repeat([]byte("x"), 300), uint16(7), 4999)
	f.Fuzz(func(t *testing.T, name string, arg []byte, maxFrame uint16, dataLen int) {
		s := NewOutputStream(1, OutputStreamConfig{MaxFramePayload: int(maxFrame)})
		req := CommandRequest{Name: name}
		if len(arg) > 0 {
			req.Args = map[hgcbor.Bytes]any{"a": arg}
		}
		var data []byte
		if dataLen >= 0 {
			data = pattern(dataLen % 5000) // small: large data is the vectors' and unit tests' job
			req.Data = bytes.NewReader(data)
		}
		out, err := s.AppendCommandRequest(nil, 1, req)
		if err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(DecoderConfig{})
		d.Feed(out)
		d.FeedEOF()
		var payload, gotData []byte
		for {
			fr, err := d.NextFrame()
			if err != nil {
				t.Fatal(err)
			}
			if fr == nil {
				break
			}
			if len(fr.Payload) > s.MaxFramePayload() {
				t.Fatalf("%d-byte payload over %d", len(fr.Payload), s.MaxFramePayload())
			}
			if fr.Type == frame.TypeCommandRequest {
				payload = append(payload, fr.Payload...)
			} else {
				gotData = append(gotData, fr.Payload...)
			}
		}
		v, err := hgcbor.Unmarshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		m := v.(map[any]any)
		if got := asBytes(m[hgcbor.Bytes("name")]); string(got) != name {
			t.Fatalf("name %q became %q", name, got)
		}
		if len(arg) > 0 {
			got := asBytes(m[hgcbor.Bytes("args")].(map[any]any)[hgcbor.Bytes("a")])
			if string(got) != string(arg) {
				t.Fatalf("argument %x became %x", arg, got)
			}
		}
		if !bytes.Equal(data, gotData) {
			t.Fatalf("%d bytes of data became %d", len(data), len(gotData))
		}
	})
}

// FuzzTextOutput builds text output from arbitrary atoms: it fails exactly
// when Mercurial would, and otherwise decodes to the atoms with their
// arguments made valid UTF-8.
func FuzzTextOutput(f *testing.F) {
	f.Add("added %s changesets", "3", "ui.status", uint16(0))
	f.Add("caf\xc3\xa9", "", "", uint16(0))
	f.Add("%s", "\xe2\x82\xed\xa0\x80", "l\xff", uint16(10))
	f.Fuzz(func(t *testing.T, format, arg, label string, maxFrame uint16) {
		s := NewOutputStream(2, OutputStreamConfig{MaxFramePayload: int(maxFrame)})
		atom := TextAtom{Format: format}
		if arg != "" {
			atom.Args = []string{arg, arg}
		}
		if label != "" {
			atom.Labels = []string{label}
		}
		out, err := s.AppendTextOutput(nil, 1, []TextAtom{atom})
		var textErr *TextOutputError
		var tooLarge *action.LimitError
		switch {
		case nonASCII(format) >= 0:
			if !errors.As(err, &textErr) || textErr.Field != "format" || textErr.Offset != nonASCII(format) {
				t.Fatalf("non-ASCII format %q: %v", format, err)
			}
			return
		case nonASCII(label) >= 0:
			if !errors.As(err, &textErr) || textErr.Field != "label" {
				t.Fatalf("non-ASCII label %q: %v", label, err)
			}
			return
		case errors.As(err, &tooLarge):
			if tooLarge.Size <= int64(s.MaxFramePayload()) {
				t.Fatalf("refused %d bytes under the limit %d", tooLarge.Size, s.MaxFramePayload())
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		payload := out[frame.HeaderSize:]
		if len(payload) > s.MaxFramePayload() {
			t.Fatalf("%d-byte payload over %d", len(payload), s.MaxFramePayload())
		}
		v, err := hgcbor.Unmarshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		m := v.([]any)[0].(map[any]any)
		if got := asBytes(m[hgcbor.Bytes("msg")]); string(got) != format {
			t.Fatalf("format %q became %q", format, got)
		}
		if arg != "" {
			got := string(asBytes(m[hgcbor.Bytes("args")].([]any)[0]))
			if !utf8.ValidString(got) || utf8.ValidString(arg) && got != arg {
				t.Fatalf("argument %q became %q", arg, got)
			}
		}
	})
}
