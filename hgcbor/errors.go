package hgcbor

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them;
// test with errors.Is.
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
	// ErrTooDeep: collections nested deeper than the limit.
	ErrTooDeep = errors.New("nesting too deep")
	// ErrTooLarge: a limit on size was reached: a Decoder's buffer, or a
	// decoding budget (then the error is a *LimitError too).
	ErrTooLarge = errors.New("input exceeds a size limit")
	// ErrTextString: a text string where DecodeOptions.RejectText forbids
	// one (Mercurial's decoder reads byte strings only).
	ErrTextString = errors.New("text strings are not supported")
)

// LimitError reports an input that would make decoding exceed one of the
// DecodeOptions budgets. It is found before the allocation that would
// exceed the budget, and returned as the Err of a *DecodeError; it wraps
// ErrTooLarge.
type LimitError struct {
	What  string // "decoded bytes" or "items"
	Size  int64  // what the input needs, counted up to the item that failed
	Limit int64
}

// Error names the measure, the size reached and the limit.
func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d over the limit of %d", e.What, e.Size, e.Limit)
}

// Unwrap returns ErrTooLarge.
func (e *LimitError) Unwrap() error { return ErrTooLarge }

// DecodeError reports what was wrong with the input and where.
type DecodeError struct {
	Offset int    // offset of the offending item's first byte in the input
	Err    error  // one of the sentinel errors, or a *LimitError
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
	Err    error  // one of the sentinel errors
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
