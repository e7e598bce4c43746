package reactor

import (
	"math/bits"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
)

// queue holds the actions a reactor has decided on but the caller has not
// taken yet: Deliver and Error items in order, and Send items whose bytes live
// in one output buffer that is reused once the caller has had them.
type queue[T any] struct {
	out    []byte // pending output; out[:handed] was returned by the last Send
	handed int
	items  []item[T]
	head   int
	err    error // set once an Error was queued: the machine is terminal
	failed bool  // the Error item has been returned
}

type item[T any] struct {
	kind  action.Kind
	end   int // Send: end offset in out
	value T   // Deliver; an Error item's error is q.err
}

// reclaim drops output the caller has already been given. Every reactor
// method calls it first, which is what makes a Send's bytes valid until the
// next call.
func (q *queue[T]) reclaim() {
	if q.handed == 0 {
		return
	}
	n := copy(q.out, q.out[q.handed:])
	q.out = q.out[:n]
	for i := q.head; i < len(q.items); i++ {
		if q.items[i].kind == action.KindSend {
			q.items[i].end -= q.handed
		}
	}
	q.handed = 0
}

// sent records that q.out grew: the new bytes join the last Send item when it
// is still waiting, or start a new one.
func (q *queue[T]) sent() {
	if n := len(q.items); n > q.head && q.items[n-1].kind == action.KindSend {
		q.items[n-1].end = len(q.out)
		return
	}
	last := 0
	for i := len(q.items) - 1; i >= q.head; i-- {
		if q.items[i].kind == action.KindSend {
			last = q.items[i].end
			break
		}
	}
	if len(q.out) > last {
		q.items = append(q.items, item[T]{kind: action.KindSend, end: len(q.out)})
	}
}

func (q *queue[T]) deliver(v T) {
	q.items = append(q.items, item[T]{kind: action.KindDeliver, value: v})
}

// deliverSlot queues a Deliver whose zero value the caller fills in
// through the pointer returned, valid until the next call on q: the value
// is built in place rather than copied in. dropLast takes it back.
func (q *queue[T]) deliverSlot() *T {
	q.items = append(q.items, item[T]{kind: action.KindDeliver})
	return &q.items[len(q.items)-1].value
}

// dropLast removes the item deliverSlot just queued.
func (q *queue[T]) dropLast() {
	n := len(q.items) - 1
	q.items[n] = item[T]{}
	q.items = q.items[:n]
}

func (q *queue[T]) fail(err error) {
	if q.err != nil {
		return
	}
	q.err = err
	q.items = append(q.items, item[T]{kind: action.KindError})
}

// next sets *a, which holds the zero Action (WantMore), to the next
// action. Writing through a pointer lets Next build its result in place
// instead of copying an Action of a large T back through each frame.
func (q *queue[T]) next(a *action.Action[T]) {
	q.reclaim()
	if q.failed {
		a.Kind, a.Err = action.KindError, q.err
		return
	}
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
		return // WantMore
	}
	it := &q.items[q.head]
	q.head++
	switch it.kind {
	case action.KindSend:
		q.handed = it.end
		a.Kind, a.Bytes = action.KindSend, q.out[:it.end]
	case action.KindDeliver:
		a.Kind, a.Value = action.KindDeliver, it.value
	default:
		q.failed = true
		a.Kind, a.Err = action.KindError, q.err
	}
	if q.head == len(q.items) {
		// Drained: start over at the front. Slots keep their last values
		// until overwritten, so clear the one handed out to drop its
		// references (the others were cleared when taken).
		q.items, q.head = q.items[:0], 0
	}
	*it = item[T]{}
}

// pending reports whether an action is waiting to be taken.
func (q *queue[T]) pending() bool { return q.failed || q.head < len(q.items) }

// byteInput turns bytes fed to a reactor into frames, lazily: a frame is
// decoded only when the reactor has nothing else to hand out, so a payload
// aliasing the decoder's buffer is used before the decoder moves on.
type byteInput struct {
	dec        framing.Decoder
	used       bool // Feed was called: FeedEOF waits for the frames
	eofPending bool
}

// pump runs the reactor's frame and EOF handlers until an action is queued
// or the input is exhausted.
func pump[T any](q *queue[T], in *byteInput, onFrame func(frame.Frame), onEOF func()) {
	for !q.pending() {
		if q.err == nil && in.used {
			f, err := in.dec.NextFrame()
			if f != nil {
				onFrame(*f)
				continue
			}
			if err != nil {
				q.fail(&ProtocolError{Msg: "error reading frame", Err: err})
				continue
			}
		}
		if in.eofPending && q.err == nil {
			in.eofPending = false
			onEOF()
			continue
		}
		return
	}
}

// idSet is a set of request ids: 8 KiB, no hashing on the hot path.
type idSet struct {
	bits [1 << 10]uint64
	n    int
}

func (s *idSet) has(id uint16) bool { return s.bits[id>>6]&(1<<(id&63)) != 0 }

func (s *idSet) add(id uint16) {
	if !s.has(id) {
		s.bits[id>>6] |= 1 << (id & 63)
		s.n++
	}
}

func (s *idSet) remove(id uint16) {
	if s.has(id) {
		s.bits[id>>6] &^= 1 << (id & 63)
		s.n--
	}
}

// ids returns the members in increasing order.
func (s *idSet) ids() []uint16 {
	out := make([]uint16, 0, s.n)
	for w, word := range s.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			out = append(out, uint16(w<<6|b))
			word &= word - 1
		}
	}
	return out
}
