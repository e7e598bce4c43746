package frame_test

import (
	"encoding/hex"
	"fmt"

	"github.com/wirereactor/wirereactor/frame"
)

// Frames in tests are written the way Mercurial's own tests write them.
func ExampleParseHuman() {
	f, err := frame.ParseHuman("1 1 stream-begin command-request new cbor:{b'name': b'heads'}")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f)
	fmt.Println(hex.EncodeToString(f.Append(nil)))
	// Output:
	// frame(size=12; request=1; stream=1; streamflags=stream-begin; type=command-request; flags=new)
	// 0c00000100010111a1446e616d65456865616473
}

func ExampleFormatHuman() {
	f := frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin,
		Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseEOS, Payload: []byte("ok\n")}
	fmt.Println(frame.FormatHuman(f))
	// Output: 1 2 stream-begin command-response eos ok\x0a
}

func ExampleParseHeader() {
	h, err := frame.ParseHeader([]byte{0x03, 0x00, 0x00, 0x01, 0x00, 0x02, 0x01, 0x32})
	fmt.Printf("%+v %v\n", h, err)
	// Output: {Length:3 RequestID:1 StreamID:2 StreamFlags:stream-begin Type:command-response Flags:2} <nil>
}
