package framing_test

import (
	"bytes"
	"fmt"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// Frames can arrive in any pieces; here the decoder gets one byte at a time.
func ExampleDecoder() {
	var wire []byte
	for _, h := range []string{
		"1 1 stream-begin command-request new cbor:{b'name': b'heads'}",
		"1 1 0 command-data eos data",
	} {
		f := frame.MustParseHuman(h) // Mercurial's human syntax for frames
		wire = f.Append(wire)
	}

	d := framing.NewDecoder(framing.DecoderConfig{MaxPayload: 64 << 10})
	for i := range wire {
		d.Feed(wire[i : i+1])
		for {
			a := d.Next()
			if a.Kind == action.KindDeliver {
				// a.Value.Payload is valid until the next call on d.
				fmt.Printf("after byte %d: %v %q\n", i, a.Value, a.Value.Payload)
				continue
			}
			if a.Kind == action.KindError {
				fmt.Println(a.Err)
				return
			}
			break // WantMore: feed the next byte
		}
	}
	d.FeedEOF()
	fmt.Println(d.Next()) // a clean end: the decoder is done
	// Output:
	// after byte 19: frame(size=12; request=1; stream=1; streamflags=stream-begin; type=command-request; flags=new) "\xa1DnameEheads"
	// after byte 31: frame(size=4; request=1; stream=1; streamflags=; type=command-data; flags=eos) "data"
	// error(EOF)
}

// A client's command request, with arguments and data to upload, as the
// frames Mercurial sends.
func ExampleOutputStream_AppendCommandRequest() {
	s := framing.NewOutputStream(1, framing.OutputStreamConfig{})
	out, err := s.AppendCommandRequest(nil, 1, framing.CommandRequest{
		Name: "pushkey",
		Args: map[hgcbor.Bytes]any{"namespace": []byte("bookmarks"), "key": []byte("@")},
		Data: bytes.NewReader(make([]byte, 40000)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	printFrames(out)
	// Output:
	// frame(size=46; request=1; stream=1; streamflags=stream-begin; type=command-request; flags=new|have-data)
	// frame(size=32768; request=1; stream=1; streamflags=; type=command-data; flags=continuation)
	// frame(size=7232; request=1; stream=1; streamflags=; type=command-data; flags=eos)
}

// A large upload goes out a frame at a time, so that only one frame's worth
// of it is in memory: the request says data follows, then each call reads
// and appends one command-data frame, to be written before the next.
func ExampleOutputStream_AppendCommandData() {
	s := framing.NewOutputStream(1, framing.OutputStreamConfig{})
	upload := bytes.NewReader(make([]byte, 70000)) // e.g. an *os.File
	buf, err := s.AppendCommandRequest(nil, 1, framing.CommandRequest{Name: "unbundle", DataLater: true})
	for done := false; err == nil; {
		printFrames(buf) // stands for writing buf to the connection
		if done {
			break
		}
		buf, done, err = s.AppendCommandData(buf[:0], 1, upload)
	}
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// frame(size=15; request=1; stream=1; streamflags=stream-begin; type=command-request; flags=new|have-data)
	// frame(size=32768; request=1; stream=1; streamflags=; type=command-data; flags=continuation)
	// frame(size=32768; request=1; stream=1; streamflags=; type=command-data; flags=continuation)
	// frame(size=4464; request=1; stream=1; streamflags=; type=command-data; flags=eos)
}

// A server's response to a command, as Mercurial's server sends it: stream
// settings, the {b'status': b'ok'} header, the response's CBOR data coalesced
// into frames, and end of stream.
func ExampleResponseEmitter() {
	s := framing.NewOutputStream(2, framing.OutputStreamConfig{})
	s.SetEncoder(identity{})
	e := framing.NewResponseEmitter(s, 1)

	var out []byte
	var err error
	step := func(f func([]byte) ([]byte, error)) {
		if err == nil {
			out, err = f(out)
		}
	}
	step(func(b []byte) ([]byte, error) { return s.AppendStreamSettings(b, 1) })
	step(func(b []byte) ([]byte, error) { return s.AppendResponseOK(b, 1) })
	for _, v := range []any{[]any{[]byte("head1"), []byte("head2")}, int64(42)} {
		chunk, _ := hgcbor.Marshal(v)
		step(func(b []byte) ([]byte, error) { return e.Send(b, chunk) })
	}
	step(e.Flush)
	step(func(b []byte) ([]byte, error) { return s.AppendResponseEOS(b, 1) })
	if err != nil {
		fmt.Println(err)
		return
	}
	printFrames(out)
	// Output:
	// frame(size=9; request=1; stream=2; streamflags=stream-begin; type=stream-settings; flags=eos)
	// frame(size=11; request=1; stream=2; streamflags=encoded; type=command-response; flags=continuation)
	// frame(size=15; request=1; stream=2; streamflags=encoded; type=command-response; flags=continuation)
	// frame(size=0; request=1; stream=2; streamflags=; type=command-response; flags=eos)
}

// Text output for people: Mercurial's ui.write() atoms.
func ExampleOutputStream_AppendTextOutput() {
	s := framing.NewOutputStream(2, framing.OutputStreamConfig{})
	out, err := s.AppendTextOutput(nil, 1, []framing.TextAtom{
		{Format: "added %s changesets\n", Args: []string{"3"}, Labels: []string{"ui.status"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	printFrames(out)
	_, err = s.AppendTextOutput(nil, 1, []framing.TextAtom{{Format: "caf\xc3\xa9"}})
	fmt.Println(err)
	// Output:
	// frame(size=53; request=1; stream=2; streamflags=stream-begin; type=text-output; flags=)
	// framing: text output atom 0: format string has non-ASCII byte 0xc3 at offset 3
}

// identity is the "identity" stream encoding: data unchanged.
type identity struct{}

func (identity) Name() string                { return "identity" }
func (identity) Encode(dst, p []byte) []byte { return append(dst, p...) }
func (identity) Flush(dst []byte) []byte     { return dst }
func (identity) Finish(dst []byte) []byte    { return dst }

// printFrames prints the frames in wire.
func printFrames(wire []byte) {
	var d framing.Decoder
	d.Feed(wire)
	for _, f := range actiontest.Drain(&d).Delivered() {
		fmt.Println(f)
	}
}
