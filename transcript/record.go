package transcript

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/framing"
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
	in    splitter
	out   splitter
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
func (r *Recorder) Inbound(p []byte) { r.bytes(Recv, &r.in, p) }

// Outbound records bytes written to the peer (transport.Config.OnOutbound).
func (r *Recorder) Outbound(p []byte) { r.bytes(Send, &r.out, p) }

// PassFDs records that n file descriptors were passed to the peer, as a send
// entry of its own (descriptors travel outside Send actions, through
// transport.Session.Exec).
func (r *Recorder) PassFDs(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entry(Send, nil)
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
	e := r.entry(Close, nil)
	if err != nil {
		e.Err = err.Error()
		if errors.Is(err, io.EOF) {
			e.By = "peer"
		}
	}
	r.write(e)
	r.open = false
	r.in, r.out = splitter{}, splitter{}
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
		r.write(NewEntry(r.conn, t, Open, nil))
	}
	return NewEntry(r.conn, t, ev, p)
}

func (r *Recorder) write(e Entry) {
	if r.err == nil {
		r.err = r.w.Write(e)
	}
}

func (r *Recorder) bytes(ev Ev, s *splitter, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.cfg.SplitJSON || s.raw {
		r.write(r.entry(ev, p))
		return
	}
	s.dec.Feed(p)
	for {
		msg, err := s.dec.Next()
		switch {
		case err != nil:
			e := r.entry(ev, nil)
			e.Err = err.Error()
			r.write(e)
			var tl *framing.JSONTooLargeError
			if errors.As(err, &tl) {
				s.raw = true // the decoder is terminal: record the rest as read
				return
			}
		case msg == nil:
			return
		default:
			r.write(r.entry(ev, msg))
		}
	}
}

// splitter cuts one direction of a JSON stream into messages.
type splitter struct {
	dec framing.JSONDecoder
	raw bool
}
