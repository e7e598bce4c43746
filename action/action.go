// Package action is the vocabulary every wirereactor machine speaks: a
// machine is fed input through methods and answers with Action values of four
// kinds — WantMore, Send, Deliver and Error — that its driver carries out.
//
// The rule, the same for every machine in the project: inputs go in through
// methods (Feed, FeedEOF, OnFrame, Execute, …), which only queue work; the
// caller then calls Next until it returns WantMore (or Error). A machine never
// blocks, reads a socket, starts a goroutine, locks or reads the clock.
//
// Limits: every configured bound hit anywhere in the project is an error that
// matches ErrLimit with errors.Is and holds a *LimitError (what was counted,
// the count, the bound), so one test covers every decoder and machine.
//
// The package is a leaf (no imports beyond the standard library's errors and
// fmt) so that transports can drive any machine without importing any
// protocol.
package action

import "fmt"

// Kind says what an Action asks its driver to do.
type Kind uint8

const (
	// KindWantMore: nothing to do until more input arrives.
	KindWantMore Kind = iota
	// KindSend: write Action.Bytes to the peer, after every earlier KindSend.
	KindSend
	// KindDeliver: hand Action.Value to the application.
	KindDeliver
	// KindError: the peer broke the protocol or a limit was hit; Action.Err says
	// which. The machine is terminal: every later call to Next returns an
	// KindError with the same Err. A machine whose input ended cleanly (FeedEOF
	// with nothing partial) and that has nothing left to do ends with an
	// KindError whose Err is io.EOF, so a loop calling Next until WantMore or
	// KindError ends; input that ends early is an error matching
	// io.ErrUnexpectedEOF instead.
	KindError
)

var kindNames = [...]string{KindWantMore: "wantmore", KindSend: "send", KindDeliver: "deliver", KindError: "error"}

// String returns the kind's lower-case name, as Mercurial's action names read.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Action is one thing a machine asks its driver to do. It is a plain value —
// one struct, a kind and the field that matters for that kind — so returning
// one boxes and allocates nothing (the shape of crypto/tls.QUICEvent).
//
// Ownership: Bytes of a Send action belongs to the machine and is valid only
// until the next call to any method of the machine that returned it; a driver
// that writes asynchronously copies it. Whether a delivered Value may alias
// machine memory is documented by each machine.
type Action[T any] struct {
	Kind  Kind
	Bytes []byte // Send: the encoded output
	Value T      // Deliver: the protocol's message
	Err   error  // Error: what was wrong
}

// Want returns a WantMore action.
func Want[T any]() Action[T] { return Action[T]{} }

// SendBytes returns a Send action for b.
func SendBytes[T any](b []byte) Action[T] { return Action[T]{Kind: KindSend, Bytes: b} }

// DeliverValue returns a Deliver action for v.
func DeliverValue[T any](v T) Action[T] { return Action[T]{Kind: KindDeliver, Value: v} }

// Fail returns an Error action for err.
func Fail[T any](err error) Action[T] { return Action[T]{Kind: KindError, Err: err} }

// String describes a for logs and test failures.
func (a Action[T]) String() string {
	switch a.Kind {
	case KindSend:
		return fmt.Sprintf("send(%d bytes)", len(a.Bytes))
	case KindDeliver:
		return fmt.Sprintf("deliver(%v)", a.Value)
	case KindError:
		return fmt.Sprintf("error(%v)", a.Err)
	default:
		return a.Kind.String()
	}
}

// Machine is a sans-IO protocol machine fed a byte stream: the shape every
// transport drives.
type Machine[T any] interface {
	// Feed hands the machine bytes received from the peer. The machine may
	// keep referencing p until Next returns WantMore or Error; after that the
	// caller may reuse p. Feeding a terminal machine is a no-op.
	Feed(p []byte)
	// FeedEOF tells the machine the peer will send nothing more. A machine
	// that holds a partial message reports it with an Error action matching
	// io.ErrUnexpectedEOF; otherwise, once everything before the end is
	// taken and it has nothing left to do, with an Error action whose Err
	// is io.EOF.
	FeedEOF()
	// Next returns the next action. Call it until it returns WantMore or
	// Error.
	Next() Action[T]
}

// Retainer is implemented by machines whose delivered values may alias
// memory that the machine or its caller reuses: the bytes handed to Feed
// (a driver's read buffer, reused once Next says WantMore) or the machine's
// own buffers. Retain returns a value equal to v that stays valid
// indefinitely, copying whatever v references that may be reused; it does
// not change the machine's state and may be called on any value the
// machine delivered, at any time before that memory is reused.
//
// A driver that hands delivered values to another goroutine, or keeps them
// past its next call into the machine, passes each one through Retain (when
// the machine implements it) as it is delivered. A driver that consumes each
// value before calling the machine again may skip it and save the copy.
type Retainer[T any] interface {
	Retain(v T) T
}
