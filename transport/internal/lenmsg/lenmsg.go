// Package lenmsg is a small sans-IO machine used to test and benchmark the
// transports until the protocol reactors exist: messages are a 4-byte
// big-endian length followed by that many payload bytes.
//
// The machine delivers each received payload as a string (a copy), can echo
// every message back, and sends application messages queued with Send.
package lenmsg

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/wirereactor/wirereactor/action"
)

// DefaultMax is the default limit on a message's payload.
const DefaultMax = 1 << 20

// ErrTruncated is the error when the stream ends inside a message.
var ErrTruncated = fmt.Errorf("lenmsg: stream ended inside a message: %w", io.ErrUnexpectedEOF)

// tooLong reports a message whose declared length exceeds the limit: an
// *action.LimitError, errors.Is action.ErrLimit.
func tooLong(n, max int) error {
	return fmt.Errorf("lenmsg: %w", &action.LimitError{What: "message bytes", Size: int64(n), Limit: int64(max)})
}

// Machine is the length-prefixed message machine. The zero value delivers
// every message and echoes nothing.
type Machine struct {
	Max     int  // payload limit; 0 means DefaultMax
	Echo    bool // send every received message back
	Discard bool // do not deliver received messages (count them only)

	Messages int // messages received
	Bytes    int // payload bytes received

	in      []byte // fed bytes not yet parsed (may alias the caller's slice)
	skip    int    // Discard without Echo: payload bytes still to skip
	ref     []byte // SendRef: a payload to return after out, by reference
	partial []byte // an incomplete message carried over between Feeds (owned)
	out     []byte // output not yet returned
	sent    bool   // out was returned by the last Next: reset it
	eof     bool
	err     error
}

// Append appends the encoding of payload to dst.
func Append(dst []byte, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// Feed implements action.Machine; p is referenced until Next returns
// WantMore or Error.
func (m *Machine) Feed(p []byte) {
	if m.err == nil && !m.eof {
		m.in = p
	}
}

// FeedEOF implements action.Machine.
func (m *Machine) FeedEOF() { m.eof = true }

// Send queues payload to be sent (copied now).
func (m *Machine) Send(payload []byte) error {
	if m.err != nil {
		return m.err
	}
	m.resetOut()
	m.out = Append(m.out, payload)
	return nil
}

func (m *Machine) max() int {
	if m.Max > 0 {
		return m.Max
	}
	return DefaultMax
}

func (m *Machine) resetOut() {
	if m.sent {
		m.out = m.out[:0]
		m.sent = false
	}
}

// SendRef queues payload to be sent without copying it: payload must stay
// unchanged until Next returns WantMore.
func (m *Machine) SendRef(payload []byte) error {
	if m.err != nil {
		return m.err
	}
	m.resetOut()
	m.out = binary.BigEndian.AppendUint32(m.out, uint32(len(payload)))
	m.ref = payload
	return nil
}

// Next implements action.Machine.
func (m *Machine) Next() action.Action[string] {
	m.resetOut()
	if m.err != nil {
		return action.Fail[string](m.err)
	}
	if len(m.out) == 0 && m.ref != nil {
		p := m.ref
		m.ref = nil
		return action.SendBytes[string](p)
	}
	if m.Discard && !m.Echo {
		m.sink()
	}
	for {
		payload, ok := m.parse()
		if m.err != nil {
			if len(m.out) > 0 {
				// Output queued before the error goes out first.
				m.sent = true
				return action.SendBytes[string](m.out)
			}
			return action.Fail[string](m.err)
		}
		if !ok {
			break
		}
		m.Messages++
		m.Bytes += len(payload)
		if m.Echo {
			m.out = Append(m.out, payload)
		}
		if !m.Discard {
			return action.DeliverValue(string(payload))
		}
	}
	if len(m.out) > 0 {
		m.sent = true
		return action.SendBytes[string](m.out)
	}
	if m.eof {
		m.err = io.EOF // a clean end
		if len(m.partial) > 0 || m.skip > 0 {
			m.err = ErrTruncated
		}
		return action.Fail[string](m.err)
	}
	return action.Want[string]()
}

// sink consumes whole messages without buffering their payloads.
func (m *Machine) sink() {
	for len(m.in) > 0 && m.err == nil {
		if m.skip > 0 {
			k := min(m.skip, len(m.in))
			m.skip -= k
			m.Bytes += k
			m.in = m.in[k:]
			if m.skip == 0 {
				m.Messages++
			}
			continue
		}
		if len(m.partial)+len(m.in) < 4 {
			m.partial = append(m.partial, m.in...)
			m.in = nil
			return
		}
		k := 4 - len(m.partial)
		m.partial = append(m.partial, m.in[:k]...)
		m.in = m.in[k:]
		n := int(binary.BigEndian.Uint32(m.partial))
		m.partial = m.partial[:0]
		if n > m.max() {
			m.err = tooLong(n, m.max())
			return
		}
		if m.skip = n; n == 0 {
			m.Messages++
		}
	}
}

// parse returns the next complete payload, zero-copy when it lies whole in
// the fed bytes. Incomplete tails are copied to m.partial.
func (m *Machine) parse() ([]byte, bool) {
	if len(m.partial) == 0 {
		if len(m.in) < 4 {
			m.partial = append(m.partial, m.in...)
			m.in = nil
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(m.in))
		if n > m.max() {
			m.err = tooLong(n, m.max())
			return nil, false
		}
		if len(m.in) >= 4+n {
			p := m.in[4 : 4+n]
			m.in = m.in[4+n:]
			return p, true
		}
		m.partial = append(m.partial, m.in...)
		m.in = nil
		return nil, false
	}
	// Complete the header, then the payload, from m.in.
	if len(m.partial) < 4 {
		k := min(4-len(m.partial), len(m.in))
		m.partial = append(m.partial, m.in[:k]...)
		m.in = m.in[k:]
		if len(m.partial) < 4 {
			return nil, false
		}
	}
	n := int(binary.BigEndian.Uint32(m.partial))
	if n > m.max() {
		m.err = tooLong(n, m.max())
		return nil, false
	}
	k := min(4+n-len(m.partial), len(m.in))
	m.partial = append(m.partial, m.in[:k]...)
	m.in = m.in[k:]
	if len(m.partial) < 4+n {
		return nil, false
	}
	p := m.partial[4:]
	m.partial = m.partial[:0]
	// p stays valid until the next append to partial, which happens only
	// after the caller has consumed p (Deliver copies it; echo appends it).
	return p, true
}

var _ action.Machine[string] = (*Machine)(nil)
