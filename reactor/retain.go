package reactor

import (
	"bytes"

	"github.com/wirereactor/wirereactor/action"
)

var _ action.Retainer[Response] = (*ClientMachine)(nil)

// Retain implements action.Retainer: it returns v with its own copy of
// Data, which may otherwise alias the bytes handed to Feed or OnFrame,
// valid only until Next returns WantMore, or the reactor's decoding
// buffer, valid only until the next call to Next. The other fields own
// their memory already: Error is decoded
// into fresh values. A nil Data stays nil and an empty one stays empty.
// Retain reads no reactor state; drivers that queue values for another
// goroutine (transport.Session does, by default) call it on every
// delivered Response.
func (c *ClientMachine) Retain(v Response) Response {
	v.Data = bytes.Clone(v.Data)
	return v
}
