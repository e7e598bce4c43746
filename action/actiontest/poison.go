package actiontest

import "github.com/wirereactor/wirereactor/action"

// PoisonByte is what Poison overwrites stale Send bytes with.
const PoisonByte = 0xDE

// Poisoned wraps a machine for a driver under test; see Poison.
type Poisoned[T any] struct {
	m     action.Machine[T]
	buf   []byte // the copy handed out with the last Send
	stale bool   // buf was handed out and must be poisoned at the next call
}

// Poison wraps m so that the bytes of each Send it returns are a copy that
// is overwritten with PoisonByte at the next call to Feed, FeedEOF or Next
// of the wrapper — the moment the action contract says they stop being
// valid (crypto/tls poisons QUICEvent data the same way). Hand the wrapper
// to a driver under test: one that keeps Send bytes instead of writing or
// copying them at once then sends garbage, which its test sees. Calls made
// to m directly (Execute, CallCommand, …) do not poison; Next, which the
// driver calls next, does.
func Poison[T any](m action.Machine[T]) *Poisoned[T] { return &Poisoned[T]{m: m} }

func (p *Poisoned[T]) poison() {
	if p.stale {
		for i := range p.buf {
			p.buf[i] = PoisonByte
		}
		p.stale = false
	}
}

// Feed poisons the last Send's bytes and feeds the wrapped machine.
func (p *Poisoned[T]) Feed(b []byte) { p.poison(); p.m.Feed(b) }

// FeedEOF poisons the last Send's bytes and tells the wrapped machine the
// input ended.
func (p *Poisoned[T]) FeedEOF() { p.poison(); p.m.FeedEOF() }

// Next poisons the last Send's bytes and returns the wrapped machine's next
// action, with the bytes of a Send replaced by a copy that the following
// call poisons.
func (p *Poisoned[T]) Next() action.Action[T] {
	p.poison()
	a := p.m.Next()
	if a.Kind == action.KindSend {
		// A fresh buffer when the last is still referenced by the driver
		// is not needed: it was just poisoned, and reusing it means a kept
		// slice shows the next Send's bytes, which is as wrong.
		p.buf = append(p.buf[:0], a.Bytes...)
		a.Bytes = p.buf[:len(p.buf):len(p.buf)]
		p.stale = true
	}
	return a
}

// Retain passes v through the wrapped machine's Retain when it implements
// action.Retainer, and returns v unchanged otherwise.
func (p *Poisoned[T]) Retain(v T) T {
	if r, ok := p.m.(action.Retainer[T]); ok {
		return r.Retain(v)
	}
	return v
}

// Unwrap returns the wrapped machine.
func (p *Poisoned[T]) Unwrap() action.Machine[T] { return p.m }
