package reactor

import (
	"errors"
	"fmt"
	"io"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrProtocol is wrapped by every *ProtocolError: the peer broke the
	// frame protocol.
	ErrProtocol = errors.New("protocol error")
	// ErrLimit is wrapped by every *LimitError: the peer made the reactor
	// hit one of its configured limits.
	ErrLimit = errors.New("limit exceeded")
	// ErrIncomplete is wrapped by the error reported when input ends while
	// command requests are still partially received.
	ErrIncomplete = errors.New("input ended with partially received requests")
	// ErrNotActive is returned by the server's Respond methods for a request
	// id that has no command awaiting a response.
	ErrNotActive = errors.New("request is not active")
	// ErrCannotIssue is returned by ClientMachine.CallCommand once a
	// single-send client has sent its one batch.
	ErrCannotIssue = errors.New("cannot issue new commands")
	// ErrCannotSend is returned when a single-send client is asked to send
	// a second time.
	ErrCannotSend = errors.New("sends cannot be performed on this instance")
)

// ProtocolError reports a frame that broke the protocol. Message is the
// text Mercurial 6.3 uses for the same failure where Mercurial has one.
type ProtocolError struct {
	Message string
	Err     error // the underlying cause (a CBOR decoding error, …), or nil
}

// Error returns the message.
func (e *ProtocolError) Error() string { return e.Message }

// Unwrap returns ErrProtocol and the cause.
func (e *ProtocolError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrProtocol, e.Err}
	}
	return []error{ErrProtocol}
}

func protoErr(format string, args ...any) error {
	return &ProtocolError{Message: fmt.Sprintf(format, args...)}
}

// LimitError reports a configured limit the peer exceeded.
type LimitError struct {
	What      string // "partially received requests", "request bytes", …
	Limit     int
	RequestID uint16
	Err       error // the underlying cause (an *hgcbor.LimitError, …), or nil
}

// Error names the request and the limit.
func (e *LimitError) Error() string {
	return fmt.Sprintf("request %d exceeds the limit of %d %s", e.RequestID, e.Limit, e.What)
}

// Unwrap returns ErrLimit and the cause.
func (e *LimitError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrLimit, e.Err}
	}
	return []error{ErrLimit}
}

// IncompleteError reports the command requests still partially received
// when input ended.
type IncompleteError struct {
	RequestIDs []uint16 // in increasing order
}

// Error lists the requests left partial.
func (e *IncompleteError) Error() string {
	return fmt.Sprintf("input ended with %d partially received command requests: %v", len(e.RequestIDs), e.RequestIDs)
}

// Unwrap returns ErrIncomplete.
func (e *IncompleteError) Unwrap() error { return ErrIncomplete }

// Is reports whether target is io.ErrUnexpectedEOF: input ended early.
func (e *IncompleteError) Is(target error) bool { return target == io.ErrUnexpectedEOF }
