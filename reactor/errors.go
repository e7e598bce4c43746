package reactor

import (
	"errors"
	"fmt"
	"io"

	"github.com/wirereactor/wirereactor/action"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrProtocol is matched by every *ProtocolError: the peer broke the
	// frame protocol. (A limit hit matches action.ErrLimit instead.)
	ErrProtocol = errors.New("protocol error")
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

// ProtocolError reports a frame that broke the protocol. Msg is the text
// Mercurial 6.3 uses for the same failure where Mercurial has one; Error
// prints it after "reactor: ", followed by the cause.
type ProtocolError struct {
	Msg string // what was wrong, without the package prefix
	Err error  // the underlying cause (a CBOR decoding error, …), or nil
}

// Error returns "reactor: " and the message, then the cause.
func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "reactor: " + e.Msg + ": " + e.Err.Error()
	}
	return "reactor: " + e.Msg
}

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Is reports whether target is ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// RequestError attributes an error to the request it arose in. A limit the
// peer made a reactor hit is a *RequestError around an *action.LimitError
// (errors.Is action.ErrLimit).
type RequestError struct {
	RequestID uint16
	Err       error
}

// Error names the request and the error.
func (e *RequestError) Error() string {
	return fmt.Sprintf("reactor: request %d: %v", e.RequestID, e.Err)
}

// Unwrap returns the error.
func (e *RequestError) Unwrap() error { return e.Err }

// limitErr reports request rid over a limit.
func limitErr(rid uint16, what string, size, limit int64) error {
	return &RequestError{RequestID: rid, Err: &action.LimitError{What: what, Size: size, Limit: limit}}
}

// IncompleteError reports the command requests still partially received
// when input ended.
type IncompleteError struct {
	RequestIDs []uint16 // in increasing order
}

// Error lists the requests left partial.
func (e *IncompleteError) Error() string {
	return fmt.Sprintf("reactor: input ended with %d partially received command requests: %v", len(e.RequestIDs), e.RequestIDs)
}

// Unwrap returns ErrIncomplete.
func (e *IncompleteError) Unwrap() error { return ErrIncomplete }

// Is reports whether target is io.ErrUnexpectedEOF: input ended early.
func (e *IncompleteError) Is(target error) bool { return target == io.ErrUnexpectedEOF }
