package qmp

import (
	"errors"
	"fmt"
)

// ErrProtocol is matched by errors.Is for every error in which the peer broke
// the QMP protocol: *GreetingError, *NegotiationError, *ProtocolError.
var ErrProtocol = errors.New("protocol error")

// ErrOOBUnavailable is returned by ExecuteOOB when the session has not
// enabled the oob capability (the server did not offer it, negotiation is not
// finished, or it was skipped).
var ErrOOBUnavailable = errors.New("qmp: out-of-band execution is not enabled on this session")

// ErrNotRunning is returned by ClientMachine.ExecuteDetached before the
// handshake is over.
var ErrNotRunning = errors.New("qmp: the handshake is not over")

// GreetingError reports a first message that is not a QMP greeting, or a
// stream that ended before one arrived.
type GreetingError struct {
	Raw []byte // the message received instead, if any (a copy)
	Err error  // what was wrong
}

// Error prefixes the cause with "qmp: bad greeting".
func (e *GreetingError) Error() string { return "qmp: bad greeting: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *GreetingError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrProtocol) true.
func (e *GreetingError) Is(target error) bool { return target == ErrProtocol }

// NegotiationError reports a failed qmp_capabilities exchange.
type NegotiationError struct {
	Info *ErrorInfo // the server's error, when it answered with one
	Raw  []byte     // the server's reply, if any (a copy)
	Err  error      // the cause when there was no error reply (e.g. end of stream)
}

// Error gives the server's error class and description when it answered
// with one, the cause otherwise.
func (e *NegotiationError) Error() string {
	if e.Info != nil {
		return "qmp: capabilities negotiation failed: " + e.Info.String()
	}
	return "qmp: capabilities negotiation failed: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *NegotiationError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrProtocol) true.
func (e *NegotiationError) Is(target error) bool { return target == ErrProtocol }

// ProtocolError reports a message from the peer that breaks QMP: not a JSON
// object, neither a response nor an event, a malformed member, or an id-less
// error that cannot be attributed to one command.
type ProtocolError struct {
	Msg string // what was wrong, lower-case
	Raw []byte // the offending message, if any (a copy)
	Err error  // the underlying cause, if any
}

// Error gives what was wrong, the cause if any, and the offending message
// cut to its first 200 bytes.
func (e *ProtocolError) Error() string {
	s := "qmp: " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if len(e.Raw) > 0 {
		const max = 200
		raw := e.Raw
		if len(raw) > max {
			return fmt.Sprintf("%s (message: %s…)", s, raw[:max])
		}
		return fmt.Sprintf("%s (message: %s)", s, raw)
	}
	return s
}

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }
