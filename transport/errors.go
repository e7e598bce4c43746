package transport

import (
	"errors"
	"fmt"
	"io"
)

// Runstate is the life-cycle state of a Session, with qemu.qmp's meaning.
type Runstate uint8

const (
	// RunstateIdle: fully quiesced and disconnected. Connect, StartServer and Start
	// are allowed.
	RunstateIdle Runstate = iota
	// RunstateConnecting: dialing, listening, accepting or running the opening
	// handshake. A failure here returns the session to Idle.
	RunstateConnecting
	// RunstateRunning: the read and write loops are up and the handshake (if any)
	// succeeded.
	RunstateRunning
	// RunstateDisconnecting: the session broke or Disconnect was called. Only
	// Disconnect (which returns the session to Idle) is useful here.
	RunstateDisconnecting
)

var runstateNames = [...]string{RunstateIdle: "idle", RunstateConnecting: "connecting", RunstateRunning: "running", RunstateDisconnecting: "disconnecting"}

// String returns the state's lower-case name.
func (r Runstate) String() string {
	if int(r) < len(runstateNames) {
		return runstateNames[r]
	}
	return fmt.Sprintf("runstate(%d)", uint8(r))
}

// StateError is returned by a call made in a state that does not allow it.
type StateError struct {
	Op       string   // the call, e.g. "connect", "do", "recv"
	State    Runstate // the state the session was in
	Required Runstate // the state the call needs
}

// Error names the call and explains the state it was made in and the
// state it needs, e.g. "recv: the session is idle (needs running)".
func (e *StateError) Error() string {
	var why string
	switch e.State {
	case RunstateIdle:
		why = "the session is idle"
	case RunstateConnecting:
		why = "the session is connecting"
	case RunstateRunning:
		why = "the session is already running"
	case RunstateDisconnecting:
		why = "the session is disconnecting; call Disconnect to return to idle"
	default:
		why = "the session is " + e.State.String()
	}
	return fmt.Sprintf("transport: %s: %s (needs %s)", e.Op, why, e.Required)
}

// ConnectError reports a failure while establishing a session. Phase names
// the step that failed — "connect" (dialing), "listen", "accept" or
// "handshake" — and Err is the root cause. The session is Idle again.
type ConnectError struct {
	Phase string
	Err   error
}

// Error names the failed phase and the root cause.
func (e *ConnectError) Error() string { return "transport: " + e.Phase + " failed: " + e.Err.Error() }

// Unwrap returns the root cause.
func (e *ConnectError) Unwrap() error { return e.Err }

var (
	// ErrPeerClosed is the root cause of a session whose peer closed the
	// stream cleanly (at a message boundary, as far as the machine could
	// tell). errors.Is(ErrPeerClosed, io.EOF) is true.
	ErrPeerClosed = fmt.Errorf("transport: peer closed the connection: %w", io.EOF)

	// ErrClosed is returned by Recv and Do after a session was disconnected
	// locally with no error.
	ErrClosed = errors.New("transport: session closed")

	// ErrFlushAbandoned is returned by Disconnect when its context ended
	// before queued output was written; the output is lost.
	ErrFlushAbandoned = errors.New("transport: flush abandoned: queued output was not written")
)
