// Command frames encodes a few frames of Mercurial's unified frame protocol,
// prints their bytes, and reads them back.
package main

import (
	"encoding/hex"
	"fmt"
	"os"

	"github.com/wirereactor/wirereactor/frame"
)

func main() {
	frames := []frame.Frame{
		{RequestID: 1, StreamID: 1, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeCommandRequest,
			Flags: frame.FlagCommandRequestNew, Payload: []byte("\xa1\x44name\x44echo")},
		{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeCommandResponse,
			Flags: frame.FlagCommandResponseEOS, Payload: []byte("\xa1\x46status\x42ok")},
	}
	var wire []byte
	for i := range frames {
		wire = frames[i].Append(wire)
	}
	fmt.Printf("%d frames, %d bytes on the wire:\n%s", len(frames), len(wire), hex.Dump(wire))
	for len(wire) > 0 {
		h, err := frame.ParseHeader(wire)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f := frame.Frame{RequestID: h.RequestID, StreamID: h.StreamID, StreamFlags: h.StreamFlags,
			Type: h.Type, Flags: h.Flags, Payload: wire[frame.HeaderSize : frame.HeaderSize+h.Length]}
		fmt.Println(f)
		wire = wire[frame.HeaderSize+h.Length:]
	}
}
