package transcript

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/jsonstream"
)

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Header is written as the transcript's first line.
	Header Header
	// SplitJSON records a JSON stream (QMP) one message per entry instead of
	// one entry per read or Send. A message over framing's default limit
	// (10 MiB) ends splitting for its direction until the connection ends:
	// what follows is recorded as read.
	SplitJSON bool
	// SplitFrames records Mercurial's frame protocol one frame per entry,
	// in human syntax ("frame"). Input that is not a frame ends splitting
	// for its direction until the connection ends.
	//
	// When splitting, the bytes of a message the connection ended inside
	// are not recorded.
	SplitFrames bool
	// Now reads the clock; nil means time.Now. Tests pass a fake one.
	Now func() time.Time
}

// Recorder writes what one session does as a transcript. Its methods match
// transport.Config's hooks, so any session records with
//
//	cfg.OnInbound, cfg.OnOutbound, cfg.OnEnd = rec.Inbound, rec.Outbound, rec.End
//
// (chain them when the configuration already uses those hooks). A
// connection's "open" entry is written at its first event. A Recorder is safe
// for concurrent use; the first write error stops recording and is returned
// by Err.
type Recorder struct {
	mu    sync.Mutex
	w     *Writer
	cfg   RecorderConfig
	start time.Time
	conn  int
	open  bool
	in    recSplit
	out   recSplit
	err   error
}

// NewRecorder writes the header to w and returns a recorder writing there.
func NewRecorder(w io.Writer, cfg RecorderConfig) (*Recorder, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Header.Side == "" {
		cfg.Header.Side = "client"
	}
	tw, err := NewWriter(w, cfg.Header)
	if err != nil {
		return nil, err
	}
	return &Recorder{w: tw, cfg: cfg, start: cfg.Now()}, nil
}

// Inbound records bytes read from the peer (transport.Config.OnInbound).
func (r *Recorder) Inbound(p []byte) { r.bytes(EvRecv, &r.in, p) }

// Outbound records bytes written to the peer (transport.Config.OnOutbound).
func (r *Recorder) Outbound(p []byte) { r.bytes(EvSend, &r.out, p) }

// PassFDs records that n file descriptors were passed to the peer, as a send
// entry of its own (descriptors travel outside Send actions, through
// transport.Session.Exec).
func (r *Recorder) PassFDs(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entry(EvSend, nil)
	e.FDs = n
	r.write(e)
}

// End records the end of the current connection with its cause
// (transport.Config.OnEnd); a cause matching io.EOF (transport's
// ErrPeerClosed) means the peer closed the stream. A connection that ended
// before any byte moved is recorded as opened and closed.
func (r *Recorder) End(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entry(EvClose, nil)
	if err != nil {
		e.Err = err.Error()
		if errors.Is(err, io.EOF) {
			e.By = "peer"
		}
	}
	r.write(e)
	r.open = false
	r.in, r.out = recSplit{}, recSplit{}
}

// Err returns the first error writing the transcript.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// entry returns an entry of the current connection, opening one if needed.
// r.mu is held.
func (r *Recorder) entry(ev Ev, p []byte) Entry {
	t := r.cfg.Now().Sub(r.start)
	if !r.open {
		r.open = true
		r.conn++
		r.write(NewEntry(r.conn, t, EvOpen, nil))
	}
	return NewEntry(r.conn, t, ev, p)
}

func (r *Recorder) write(e Entry) {
	if r.err == nil {
		r.err = r.w.Write(e)
	}
}

func (r *Recorder) bytes(ev Ev, s *recSplit, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.sp == nil && !s.raw {
		switch {
		case r.cfg.SplitFrames:
			s.sp = new(frameSplitter)
		case r.cfg.SplitJSON:
			s.sp = new(jsonstream.Decoder)
		default:
			s.raw = true
		}
	}
	if s.raw {
		r.write(r.entry(ev, p))
		return
	}
	s.sp.Feed(p)
	for {
		msg, err := s.sp.Next()
		switch {
		case err != nil:
			e := r.entry(ev, nil)
			e.Err = err.Error()
			r.write(e)
			// A JSON message over the size limit leaves the splitter terminal;
			// a syntax error (nesting over the limit included) it recovers from.
			var se *jsonstream.SyntaxError
			if r.cfg.SplitFrames || errors.Is(err, action.ErrLimit) && !errors.As(err, &se) {
				s.raw = true // the splitter is terminal: record the rest as read
				return
			}
		case msg == nil:
			return
		case r.cfg.SplitFrames:
			e := r.entry(ev, nil)
			frameEntry(&e, msg)
			r.write(e)
		default:
			r.write(r.entry(ev, msg))
		}
	}
}

// recSplit cuts one direction of a stream into messages.
type recSplit struct {
	sp  splitter // nil until the first bytes
	raw bool     // record as read: no splitting asked for, or it failed
}

// Tap returns m with its traffic recorded by rec: the bytes fed to it as
// received, its Send bytes as sent, and its final Error as the end of the
// connection (io.EOF, the machine's clean end, as the peer closing). It
// records a machine driven by anything — actiontest.Pump, an event loop —
// without a transport.
func Tap[T any](m action.Machine[T], rec *Recorder) action.Machine[T] {
	return &tap[T]{m: m, rec: rec}
}

type tap[T any] struct {
	m     action.Machine[T]
	rec   *Recorder
	ended bool
}

func (t *tap[T]) Feed(p []byte) { t.rec.Inbound(p); t.m.Feed(p) }
func (t *tap[T]) FeedEOF()      { t.m.FeedEOF() }

func (t *tap[T]) Next() action.Action[T] {
	a := t.m.Next()
	switch {
	case a.Kind == action.KindSend:
		t.rec.Outbound(a.Bytes)
	case a.Kind == action.KindError && !t.ended:
		t.ended = true
		t.rec.End(a.Err)
	}
	return a
}

// Retain passes v through the tapped machine's Retain, if it has one.
func (t *tap[T]) Retain(v T) T {
	if r, ok := t.m.(action.Retainer[T]); ok {
		return r.Retain(v)
	}
	return v
}
