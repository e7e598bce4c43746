package action

import (
	"errors"
	"fmt"
)

// ErrLimit is matched by errors.Is for every error in the project that reports
// a configured bound hit — by a decoder, a machine or a transport, whatever
// the package. The error also holds a *LimitError saying what was counted.
var ErrLimit = errors.New("limit exceeded")

// LimitError reports input (or output) that would exceed a configured bound.
// Every package reports its limits with it, so one errors.As finds what was
// counted and the bound wherever the limit was hit. It is a cause: the package
// that hit the limit wraps it with its own prefix and context (a request id,
// an offset, a frame type), so its message has no package prefix.
type LimitError struct {
	// What names what was counted, with its unit: "json message bytes",
	// "partially received requests", "nesting depth".
	What string
	// Size is the count that broke the bound: what the input announced when
	// it said so (a frame header's length), else the count reached, at least
	// Limit+1.
	Size int64
	// Limit is the configured bound.
	Limit int64
}

// Error names what was counted, the count and the bound.
func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d exceeds the limit of %d", e.What, e.Size, e.Limit)
}

// Is reports whether target is ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }
