package hgcbor_test

import (
	"encoding/hex"
	"fmt"

	"github.com/wirereactor/wirereactor/hgcbor"
)

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

// Mercurial sorts map keys by Python type name, then by value: b'aa' comes
// before b'b' although its encoding is longer.
func ExampleMarshal() {
	req := map[hgcbor.Bytes]any{
		"name": hgcbor.Bytes("heads"),
		"args": map[hgcbor.Bytes]any{"b": 1, "aa": 2},
	}
	b, err := hgcbor.Marshal(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hex.EncodeToString(b))
	// Output: a24461726773a242616102416201446e616d65456865616473
}

func ExampleUnmarshal() {
	b, _ := hex.DecodeString("a2446e616d654568656164734461726773d901028241614162")
	v, err := hgcbor.Unmarshal(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	m := v.(map[any]any)
	fmt.Printf("name=%s args=%#v\n", m[hgcbor.Bytes("name")], m[hgcbor.Bytes("args")])
	// Output: name=heads args=hgcbor.Set{"a", "b"}
}

// A Decoder takes input in pieces and hands out items as they complete.
func ExampleDecoder() {
	stream, _ := hex.DecodeString("a14673746174757342" + "6f6b" + "5f426869ff")
	var d hgcbor.Decoder
	for _, piece := range [][]byte{stream[:5], stream[5:12], stream[12:]} {
		d.Feed(piece)
		for {
			v, ok, err := d.Next()
			if err != nil {
				fmt.Println(err)
				return
			}
			if !ok {
				fmt.Println("want more")
				break
			}
			fmt.Printf("%#v\n", v)
		}
	}
	// Output:
	// want more
	// map[interface {}]interface {}{"status":[]uint8{0x6f, 0x6b}}
	// want more
	// []byte{0x68, 0x69}
	// want more
}

// A Set is written as tag 258 over its elements in Mercurial's order:
// None, then bools, bytes, ints and text, each sorted by value.
func ExampleSet() {
	b, err := hgcbor.Marshal(hgcbor.Set{"t", 2, hgcbor.Bytes("b"), nil, -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hex.EncodeToString(b))
	// Output: d9010285f6416220026174
}
