package hgcbor

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them or,
// for a limit hit (nesting depth, a Decoder's buffer, a decoding budget), an
// *action.LimitError that matches action.ErrLimit; test with errors.Is.
var (
	// ErrTruncated: the input ends inside an item.
	ErrTruncated = errors.New("unexpected end of input")
	// ErrTrailingData: bytes follow the item where exactly one was expected.
	ErrTrailingData = errors.New("trailing data after item")
	// ErrMalformed: the bytes are not well-formed CBOR (reserved additional
	// information, a misplaced break, a bad indefinite-length chunk).
	ErrMalformed = errors.New("malformed item")
	// ErrUnsupported: well-formed CBOR outside Mercurial's subset (floats,
	// semantic tags other than 258, simple values other than false, true and
	// null), or a Go type with no CBOR form here.
	ErrUnsupported = errors.New("unsupported item")
	// ErrInvalidKey: a collection used as a map key or set element.
	ErrInvalidKey = errors.New("invalid map key or set element")
	// ErrDuplicateKey: two map keys or set elements Python holds equal.
	ErrDuplicateKey = errors.New("duplicate map key or set element")
	// ErrIntegerRange: an integer outside [-2^64, 2^64).
	ErrIntegerRange = errors.New("integer out of range")
	// ErrInvalidUTF8: a text string that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("text string is not valid UTF-8")
	// ErrTextString: a text string where DecodeOptions.RejectText forbids
	// one (Mercurial's decoder reads byte strings only).
	ErrTextString = errors.New("text strings are not supported")
)

// DecodeError reports what was wrong with the input and where.
type DecodeError struct {
	Offset int    // offset of the offending item's first byte in the input
	Err    error  // one of the sentinel errors, or an *action.LimitError
	Detail string // what was seen, e.g. "semantic tag 1"; may be empty
}

// Error describes the problem, the item and its offset.
func (e *DecodeError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("hgcbor: %v at offset %d", e.Err, e.Offset)
	}
	return fmt.Sprintf("hgcbor: %v: %s at offset %d", e.Err, e.Detail, e.Offset)
}

// Unwrap returns the sentinel error.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a Go value that cannot be encoded.
type EncodeError struct {
	Type   string // the Go type of the offending value
	Err    error  // one of the sentinel errors, or an *action.LimitError
	Detail string // what was seen; may be empty
}

// Error names the Go type and the problem.
func (e *EncodeError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("hgcbor: cannot encode %s: %v", e.Type, e.Err)
	}
	return fmt.Sprintf("hgcbor: cannot encode %s: %v: %s", e.Type, e.Err, e.Detail)
}

// Unwrap returns the sentinel error.
func (e *EncodeError) Unwrap() error { return e.Err }

func encErr(v any, err error, detail string) error {
	return &EncodeError{Type: fmt.Sprintf("%T", v), Err: err, Detail: detail}
}
