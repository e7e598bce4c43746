package reactor

import (
	"errors"

	"github.com/wirereactor/wirereactor/hgcbor"
)

// decodeAvailable decodes the complete CBOR items at the start of b, the
// way Mercurial's buffering decoder does: an item cut short at the end is
// not an error, it is simply not available yet.
func decodeAvailable(b []byte) ([]any, error) {
	var out []any
	for len(b) > 0 {
		v, rest, err := hgcbor.UnmarshalFirst(b)
		if err != nil {
			if errors.Is(err, hgcbor.ErrTruncated) {
				return out, nil
			}
			return nil, err
		}
		if err := checkNoText(v); err != nil {
			return nil, err
		}
		out = append(out, v)
		b = rest
	}
	return out, nil
}

// ErrTextString is the decoding error for a CBOR text string where Mercurial
// only reads byte strings: its decoder rejects text strings outright, so we
// reject them in everything a peer sends to be read by a reactor. It is
// hgcbor's, which reports them when decoding with RejectText.
var ErrTextString = hgcbor.ErrTextString

// checkNoText reports whether v, a decoded CBOR value, holds a text string.
func checkNoText(v any) error {
	switch v := v.(type) {
	case string:
		return ErrTextString
	case []any:
		for _, x := range v {
			if err := checkNoText(x); err != nil {
				return err
			}
		}
	case hgcbor.Set:
		for _, x := range v {
			if err := checkNoText(x); err != nil {
				return err
			}
		}
	case map[any]any:
		for k, x := range v {
			if err := checkNoText(k); err != nil {
				return err
			}
			if err := checkNoText(x); err != nil {
				return err
			}
		}
	}
	return nil
}

// mustMarshal encodes a constant value.
func mustMarshal(v any) []byte {
	b, err := hgcbor.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
