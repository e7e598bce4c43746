// Package actiontest is a kit for testing protocol logic built on
// wirereactor's machines without sockets, goroutines or clocks: it drives
// machines the way a transport does, but in memory and deterministically.
//
//   - Drain calls Next until WantMore or Error and returns every action.
//   - Feed hands a machine input, cut into pieces as the options say, and
//     drains it after every piece.
//   - Pump connects two machines: the bytes one sends are fed to the other
//     until both are quiet.
//   - Splits yields the options that cut input at every split point and
//     into single bytes, to check a machine is indifferent to how its input
//     arrives.
//   - Poison wraps a machine so that the bytes of each Send are overwritten
//     at the next call, as crypto/tls does with QUICEvent data, to catch a
//     driver that keeps them past their validity.
//
// The kit is a correct driver: it copies Send bytes at once, and passes
// delivered values through the machine's Retain when the machine implements
// action.Retainer. Like the machines, it does no I/O.
package actiontest

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/wirereactor/wirereactor/action"
)

// ErrRunaway ends the actions of a machine that produced more actions than
// the limit (Limit; a million by default) without becoming quiet: a machine
// that never says WantMore, or two machines that talk forever.
var ErrRunaway = errors.New("actiontest: the machine never became quiet")

// DefaultLimit is the number of actions per machine after which Drain, Feed
// and Pump give up with ErrRunaway.
const DefaultLimit = 1_000_000

// Source is what Drain needs of a machine: its Next method.
type Source[T any] interface {
	Next() action.Action[T]
}

// Actions is what a machine did, in order, as returned by Drain, Feed and
// Pump. The bytes of Send actions are copies owned by the slice; delivered
// values were passed through Retain if the machine implements
// action.Retainer. WantMore actions are not recorded. An Error action, when
// present, is the last one.
type Actions[T any] []action.Action[T]

// Sent returns the bytes of every Send action, concatenated.
func (as Actions[T]) Sent() []byte {
	var out []byte
	for _, a := range as {
		if a.Kind == action.KindSend {
			out = append(out, a.Bytes...)
		}
	}
	return out
}

// Delivered returns the values of every Deliver action, in order.
func (as Actions[T]) Delivered() []T {
	var out []T
	for _, a := range as {
		if a.Kind == action.KindDeliver {
			out = append(out, a.Value)
		}
	}
	return out
}

// Err returns the error of the final Error action, or nil if the machine
// ended quiet (WantMore).
func (as Actions[T]) Err() error {
	if n := len(as); n > 0 && as[n-1].Kind == action.KindError {
		return as[n-1].Err
	}
	return nil
}

// String lists the actions one per line, Send bytes quoted, for test
// failure messages.
func (as Actions[T]) String() string {
	var b strings.Builder
	for _, a := range as {
		switch a.Kind {
		case action.KindSend:
			b.WriteString("send " + strconv.Quote(string(a.Bytes)))
		default:
			b.WriteString(a.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Option adjusts how Drain, Feed and Pump drive machines.
type Option func(*options)

type options struct {
	limit    int
	cut      int // 0: whole; > 0: the first piece of every transfer has cut bytes
	chunk    int // > 0: every piece has at most chunk bytes
	scribble bool
	eof      bool
	handlers map[any]any // machine → func(T)
	keepers  map[any]any // machine → func(T) T
}

func newOptions(opts []Option) *options {
	o := &options{limit: DefaultLimit}
	for _, f := range opts {
		f(o)
	}
	return o
}

// Limit makes the kit give up with ErrRunaway once a machine has produced n
// actions (DefaultLimit without this option).
func Limit(n int) Option { return func(o *options) { o.limit = max(n, 1) } }

// OneByte feeds every transfer one byte at a time, draining the machine
// after each byte: Chunks(1).
func OneByte() Option { return Chunks(1) }

// Chunks feeds every transfer in pieces of n bytes (the last may be
// shorter), draining the machine after each.
func Chunks(n int) Option { return func(o *options) { o.chunk, o.cut = max(n, 1), 0 } }

// CutAt feeds every transfer in two pieces, its first k bytes and the rest
// (whole when it is not longer than k), draining the machine after each.
func CutAt(k int) Option { return func(o *options) { o.cut, o.chunk = max(k, 0), 0 } }

// Whole feeds every transfer in one piece (the default).
func Whole() Option { return func(o *options) { o.cut, o.chunk = 0, 0 } }

// Scribble overwrites the bytes fed to a machine once it said WantMore (or
// Error) after them, as a driver reusing its read buffer does: a machine
// that keeps referencing fed bytes too long then sees garbage. Use it with
// machines whose delivered values own their memory or that implement
// action.Retainer; without it the kit never reuses fed bytes.
func Scribble() Option { return func(o *options) { o.scribble = true } }

// ThenEOF makes Feed call FeedEOF after the input and drain the machine
// once more.
func ThenEOF() Option { return func(o *options) { o.eof = true } }

// OnDeliver makes Pump, Feed and Drain call f with every value m delivers,
// as it is delivered. f may call m's input methods (a server answering a command)
// or the other machine's: their output is pumped next.
func OnDeliver[T any](m action.Machine[T], f func(T)) Option {
	return func(o *options) {
		if o.handlers == nil {
			o.handlers = make(map[any]any)
		}
		o.handlers[m] = f
	}
}

// RetainWith makes the kit pass every value m delivers through keep (say,
// frame.Frame.Clone) before recording it or handing it to an OnDeliver
// handler, instead of m's own Retain: for machines whose delivered values
// are valid only until their next call and which do not implement
// action.Retainer, such as framing.Decoder.
func RetainWith[T any](m Source[T], keep func(T) T) Option {
	return func(o *options) {
		if o.keepers == nil {
			o.keepers = make(map[any]any)
		}
		o.keepers[m] = keep
	}
}

// Splits yields, for input of n bytes, a description and an option for
// every way the kit can cut it: whole, one byte at a time, and cut in two
// at every offset from 1 to n-1. A test runs its exchange once per option
// with fresh machines and expects the same result each time.
func Splits(n int) iter.Seq2[string, Option] {
	return func(yield func(string, Option) bool) {
		if !yield("whole", Whole()) || !yield("one byte at a time", OneByte()) {
			return
		}
		for k := 1; k < n; k++ {
			if !yield(fmt.Sprintf("cut at %d", k), CutAt(k)) {
				return
			}
		}
	}
}

// side drives one machine: it records the actions and collects the bytes
// it sends.
type side[T any] struct {
	m       Source[T]
	o       *options
	retain  func(T) T
	handler func(T)
	acts    Actions[T]
	n       int  // actions seen, for the limit
	done    bool // Error seen (or the limit hit)
	runaway bool // the limit hit
}

func newSide[T any](m Source[T], o *options) *side[T] {
	s := &side[T]{m: m, o: o}
	if r, ok := m.(action.Retainer[T]); ok {
		s.retain = r.Retain
	}
	if k, ok := o.keepers[any(m)].(func(T) T); ok {
		s.retain = k
	}
	if h, ok := o.handlers[any(m)].(func(T)); ok {
		s.handler = h
	}
	return s
}

// drain calls Next until WantMore or Error, appending what was sent to
// *out, and reports whether the machine did anything.
func (s *side[T]) drain(out *[]byte) (busy bool) {
	for !s.done {
		a := s.m.Next()
		if a.Kind == action.KindWantMore {
			return busy
		}
		busy = true
		if s.n++; s.n > s.o.limit {
			s.runaway = true
			s.fail(ErrRunaway)
			return busy
		}
		switch a.Kind {
		case action.KindSend:
			a.Bytes = bytes.Clone(a.Bytes)
			if out != nil {
				*out = append(*out, a.Bytes...)
			}
		case action.KindDeliver:
			if s.retain != nil {
				a.Value = s.retain(a.Value)
			}
		case action.KindError:
			s.done = true
		}
		s.acts = append(s.acts, a)
		if a.Kind == action.KindDeliver && s.handler != nil {
			s.handler(a.Value)
		}
	}
	return busy
}

func (s *side[T]) fail(err error) {
	s.acts = append(s.acts, action.Fail[T](err))
	s.done = true
}

// feed hands p to the machine in the pieces the options ask for, draining
// it after each, with what it sends appended to *out.
func (s *side[T]) feed(m action.Machine[T], p []byte, out *[]byte) {
	p = bytes.Clone(p) // the machine may reference it; the caller's p is not ours
	for len(p) > 0 && !s.done {
		n := len(p)
		switch {
		case s.o.chunk > 0:
			n = min(s.o.chunk, len(p))
		case s.o.cut > 0 && s.o.cut < len(p):
			n = s.o.cut
		}
		piece := p[:n:n]
		p = p[n:]
		m.Feed(piece)
		s.drain(out)
		if s.o.scribble {
			for i := range piece {
				piece[i] = 0xA5
			}
		}
	}
}

// Drain calls m.Next until it returns WantMore or Error and returns every
// action but the final WantMore. The Limit, RetainWith and OnDeliver
// options apply.
func Drain[T any](m Source[T], opts ...Option) Actions[T] {
	s := newSide(m, newOptions(opts))
	s.drain(nil)
	return s.acts
}

// Feed drains m, then feeds it input in the pieces the options ask for
// (whole by default), draining it after every piece, and with ThenEOF calls
// FeedEOF and drains it once more. It returns every action, stopping at the
// first Error. OnDeliver handlers for m are called as values are delivered.
func Feed[T any](m action.Machine[T], input []byte, opts ...Option) Actions[T] {
	o := newOptions(opts)
	s := newSide(Source[T](m), o)
	s.drain(nil)
	s.feed(m, input, nil)
	if o.eof && !s.done {
		m.FeedEOF()
		s.drain(nil)
	}
	return s.acts
}

// Pump connects machines a and b in memory: it drains each, feeds the bytes
// one sent to the other (in the pieces the options ask for, draining the
// receiver after each piece), and repeats until both are quiet — neither
// has anything to do and no bytes are in flight. OnDeliver handlers are
// called as values are delivered and may feed either machine more work.
//
// A machine that returns Error stops being driven; the bytes it sent before
// still reach the other. Pump never calls FeedEOF. It returns the actions of
// a and of b; when the two do not become quiet within the limit, both end
// with ErrRunaway (unless already ended by an Error of their own).
func Pump[A, B any](a action.Machine[A], b action.Machine[B], opts ...Option) (Actions[A], Actions[B]) {
	o := newOptions(opts)
	sa, sb := newSide(Source[A](a), o), newSide(Source[B](b), o)
	var toA, toB []byte
	for rounds := 0; ; rounds++ {
		busy := sa.drain(&toB)
		busy = sb.drain(&toA) || busy
		if len(toB) > 0 && !sb.done {
			p := toB
			toB = nil
			sb.feed(b, p, &toA)
			busy = true
		}
		toB = nil // a stopped peer's bytes are dropped
		if len(toA) > 0 && !sa.done {
			p := toA
			toA = nil
			sa.feed(a, p, &toB)
			busy = true
		}
		toA = nil
		if !busy && len(toB) == 0 {
			return sa.acts, sb.acts
		}
		if rounds > o.limit || sa.runaway || sb.runaway {
			if !sa.done {
				sa.fail(ErrRunaway)
			}
			if !sb.done {
				sb.fail(ErrRunaway)
			}
			return sa.acts, sb.acts
		}
		if sa.done && sb.done {
			return sa.acts, sb.acts
		}
	}
}
