package transcript

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/jsonstream"
)

// PeerConfig configures a Peer.
type PeerConfig struct {
	// Conn is the connection of the transcript to replay; zero means the
	// first one.
	Conn int
	// Timed holds each message the peer sends until Advance has moved the
	// replay clock to the time it was recorded at, counted from the
	// connection's first entry. Untimed (the default), a message goes out
	// as soon as everything recorded before it has happened.
	Timed bool
	// PlayClient replays the client's side instead, to serve a server
	// machine (qmp.ServerMachine, reactor.ServerMachine): the peer sends
	// the client's recorded messages and expects the server's. Messages
	// and errors below that speak of "the client" then mean the server.
	PlayClient bool
}

// Matched is what a Peer delivers: a message of the client that matched
// the transcript.
type Matched struct {
	Line    int    // the transcript line it matched
	Message []byte // what the client sent (owned by the value)
}

// Peer replays one side of a transcript as a sans-IO machine
// (action.Machine[Matched]): connect it to a client machine with
// actiontest.Pump, or serve a driven client with Serve. NewQMPPeer makes
// one for QMP, NewFramePeer for Mercurial's frame protocol.
//
// It sends the server's recorded messages in their recorded order and reads
// the client's. Each client message must equal the one the transcript
// expects next (for QMP, except for its "id" and an event's "timestamp":
// ids are matched by value, and
// the server's later messages carry the client's actual id wherever the
// recorded one appeared). Events go out where they were recorded: after the
// client messages recorded before them. A client message the transcript
// does not expect there is a terminal Error, a *MismatchError whose message
// shows the expected and the actual message and where they differ. Where
// the recording shows the server closing the stream, the peer ends with
// io.EOF once everything before happened; where the client closed it, the
// peer waits for the client's end of stream (FeedEOF) and then ends with
// io.EOF. Done says whether the whole connection was replayed.
//
// Descriptors recorded as passed are not checked. The peer never reads the
// clock: in Timed mode the driver moves its clock with Advance.
type Peer struct {
	d     dialect
	steps []step
	pos   int // the first step not yet done
	in    splitter
	out   []byte
	sent  []byte
	queue []Matched
	now   time.Duration
	timed bool
	them  string // "client", or "server" when the peer plays the client
	ended bool   // the recorded close was reached
	err   error
}

// step is one thing the transcript records. "client" and "server" name the
// machine the peer serves and the peer itself (the other way round with
// PlayClient).
type step struct {
	client bool // a message of the client (else of the server)
	close  bool // the connection's end
	server bool // close: the server closed the stream
	msg    []byte
	t      time.Duration
	line   int
	done   bool
}

// dialect is what a Peer needs to know of a protocol.
type dialect interface {
	// splitter returns a splitter of a byte stream into messages.
	splitter() splitter
	// match reports whether the client's message got is the expected one,
	// want, (learning what it needs to remap later messages), and lists
	// where they differ when it is not.
	match(want, got []byte) (ok bool, diff []string)
	// wire appends the bytes that send the server's message msg.
	wire(dst, msg []byte) []byte
	// show renders a message for an error.
	show(msg []byte) string
}

// splitter cuts a byte stream into messages: Next returns one, or (nil,
// nil) when it needs more input, or io.EOF after FeedEOF at a clean end.
type splitter interface {
	Feed(p []byte)
	FeedEOF()
	Next() ([]byte, error)
}

// NewQMPPeer returns a peer replaying the server side of connection
// cfg.Conn of the QMP transcript t (the client side with cfg.PlayClient),
// whichever side recorded t. It reports a connection the transcript
// does not hold, or recorded bytes that do not split into JSON messages.
func NewQMPPeer(t *Transcript, cfg PeerConfig) (*Peer, error) {
	return newPeer(t, cfg, &qmpDialect{ids: map[string][]byte{}})
}

func newPeer(t *Transcript, cfg PeerConfig, d dialect) (*Peer, error) {
	conn := cfg.Conn
	if conn == 0 {
		if cs := t.Conns(); len(cs) > 0 {
			conn = cs[0]
		}
	}
	// theirEv marks the entries holding the messages of the machine the
	// peer serves: the client's, unless the peer plays the client.
	recordedByClient := t.Header.Side != "server"
	theirEv := EvSend
	if recordedByClient == cfg.PlayClient {
		theirEv = EvRecv
	}
	p := &Peer{d: d, in: d.splitter(), timed: cfg.Timed, them: "client"}
	if cfg.PlayClient {
		p.them = "server"
	}
	decs := [2]splitter{d.splitter(), d.splitter()} // 0: the server's bytes, 1: the client's
	var start time.Duration
	found := false
	for _, e := range t.Entries {
		if e.Conn != conn {
			continue
		}
		if !found {
			found, start = true, e.Time()
		}
		switch e.Ev {
		case EvClose:
			// Who closed: "by":"peer" names the side that did not record.
			closedByClient := recordedByClient != (e.By == "peer")
			mine := closedByClient == cfg.PlayClient
			p.steps = append(p.steps, step{close: true, server: mine, t: e.Time() - start, line: e.Line})
			continue
		case EvOpen:
			continue
		}
		if e.Err != "" || len(e.Bytes()) == 0 {
			continue // bytes the recorder could not split, or descriptors alone
		}
		client := e.Ev == theirEv
		sp := decs[0]
		if client {
			sp = decs[1]
		}
		sp.Feed(e.Bytes())
		for {
			msg, err := sp.Next()
			if err != nil {
				return nil, &FormatError{Line: e.Line, Msg: "not a message: " + err.Error()}
			}
			if msg == nil {
				break
			}
			p.steps = append(p.steps, step{client: client, msg: bytes.Clone(msg), t: e.Time() - start, line: e.Line})
		}
	}
	if !found {
		return nil, fmt.Errorf("transcript: no connection %d (the transcript holds %v)", conn, t.Conns())
	}
	for _, sp := range decs {
		sp.FeedEOF()
		if _, err := sp.Next(); err != io.EOF {
			return nil, fmt.Errorf("transcript: connection %d ends inside a message: %v", conn, err)
		}
	}
	return p, nil
}

// Feed hands the peer bytes from the client. It keeps referencing b until
// Next returns WantMore or Error.
func (p *Peer) Feed(b []byte) {
	if p.err == nil {
		p.in.Feed(b)
	}
}

// FeedEOF tells the peer the client closed the stream.
func (p *Peer) FeedEOF() {
	if p.err == nil {
		p.in.FeedEOF()
	}
}

// Advance moves the replay clock of a Timed peer to d since the replayed
// connection began; messages recorded up to d may then go out. The clock
// never goes back.
func (p *Peer) Advance(d time.Duration) { p.now = max(p.now, d) }

// Due returns when the next message (or the connection's end) held by the
// replay clock was recorded, and whether one is held.
func (p *Peer) Due() (time.Duration, bool) {
	for _, s := range p.steps[p.pos:] {
		if s.done {
			continue
		}
		if s.client {
			return 0, false
		}
		return s.t, p.timed && s.t > p.now
	}
	return 0, false
}

// Done returns nil once every step of the replayed connection happened
// (the client's closing of the stream, when the client closed it, is left
// to the client), and otherwise an *UnfinishedError saying what the
// transcript still expects.
func (p *Peer) Done() error {
	for _, s := range p.steps[p.pos:] {
		if !s.done && !(s.close && !s.server) {
			return &UnfinishedError{Line: s.line, Client: s.client, Close: s.close, Message: s.msg, At: s.t,
				shown: p.d.show(s.msg), who: p.them}
		}
	}
	return nil
}

// Next returns the next action: Send with the server's messages, Deliver
// with each client message matched, Error when the client strays from the
// transcript (a *MismatchError, or a stream that does not split into the
// protocol's messages), and
// io.EOF once the recorded connection ended and everything before happened.
func (p *Peer) Next() action.Action[Matched] {
	if p.err != nil {
		return action.Fail[Matched](p.err)
	}
	for {
		if len(p.queue) > 0 {
			m := p.queue[0]
			p.queue = p.queue[1:]
			return action.DeliverValue(m)
		}
		p.emit()
		if len(p.out) > 0 {
			p.sent, p.out = p.out, p.sent[:0]
			return action.SendBytes[Matched](p.sent)
		}
		msg, err := p.in.Next()
		switch {
		case err == io.EOF:
			if i := p.expected(); i >= 0 {
				return p.fail(p.mismatch(i, nil))
			}
			// The client ended where the transcript allows it.
			if i := p.first(); i < len(p.steps) && p.steps[i].close && !p.steps[i].server {
				p.steps[i].done = true
				p.pos = p.first()
			}
			p.ended = true
			return p.fail(io.EOF)
		case err != nil:
			return p.fail(fmt.Errorf("transcript: the client's stream: %w", err))
		case msg == nil:
			if p.ended {
				return p.fail(io.EOF)
			}
			return action.Want[Matched]()
		}
		if err := p.match(msg); err != nil {
			return p.fail(err)
		}
	}
}

func (p *Peer) fail(err error) action.Action[Matched] {
	p.err = err
	return action.Fail[Matched](err)
}

// emit queues the server messages that may go out now.
func (p *Peer) emit() {
	for i := p.pos; i < len(p.steps); i++ {
		s := &p.steps[i]
		if s.done {
			continue
		}
		if s.client || p.timed && s.t > p.now {
			break
		}
		if s.close {
			if s.server && p.first() == i {
				s.done, p.ended = true, true // the server closes: the peer ends
			}
			break // or it waits for the client to close
		}
		p.out = p.d.wire(p.out, s.msg)
		s.done = true
	}
	p.pos = p.first()
}

// first returns the index of the first step not done.
func (p *Peer) first() int {
	i := p.pos
	for i < len(p.steps) && p.steps[i].done {
		i++
	}
	return i
}

// expected returns the index of the client message the transcript expects
// next (passing server messages held by the clock), or -1.
func (p *Peer) expected() int {
	for i := p.pos; i < len(p.steps); i++ {
		s := &p.steps[i]
		switch {
		case s.done:
		case s.close:
			return -1
		case s.client:
			return i
		}
	}
	return -1
}

// match checks a client message against the transcript.
func (p *Peer) match(msg []byte) error {
	i := p.expected()
	if i < 0 {
		return p.mismatch(-1, msg)
	}
	s := &p.steps[i]
	if ok, _ := p.d.match(s.msg, msg); !ok {
		return p.mismatch(i, msg)
	}
	s.done = true
	p.pos = p.first()
	p.queue = append(p.queue, Matched{Line: s.line, Message: bytes.Clone(msg)})
	return nil
}

// qmpDialect matches QMP messages as JSON values minus their "id", and
// writes the client's ids into the server's messages.
type qmpDialect struct {
	ids map[string][]byte // canonical recorded id → the client's id, as it wrote it
}

func (*qmpDialect) splitter() splitter { return new(jsonstream.Decoder) }

func (*qmpDialect) show(msg []byte) string { return string(msg) }

// wire appends msg, remapped, and QEMU's line ending.
func (d *qmpDialect) wire(dst, msg []byte) []byte {
	return append(d.remap(dst, msg), '\r', '\n')
}

func (d *qmpDialect) match(wantMsg, gotMsg []byte) (bool, []string) {
	want, err1 := decode(wantMsg)
	got, err2 := decode(gotMsg)
	if err1 != nil || err2 != nil {
		return false, nil
	}
	wantID, wantHas := takeID(want)
	_, gotHas := takeID(got)
	dropTimestamp(want)
	dropTimestamp(got)
	if wantHas != gotHas || !reflect.DeepEqual(want, got) {
		var out []string
		diff("", want, got, &out)
		return false, out
	}
	if wantHas {
		if start, end, ok := idSpan(gotMsg); ok {
			d.ids[canonical(wantID)] = bytes.Clone(gotMsg[start:end])
		}
	}
	return true, nil
}

// remap appends msg to dst with its top-level "id" replaced by the client's
// id when the recorded one was matched; the rest of msg is kept byte for
// byte.
func (d *qmpDialect) remap(dst, msg []byte) []byte {
	start, end, ok := idSpan(msg)
	if !ok {
		return append(dst, msg...)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(msg[start:end]))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return append(dst, msg...)
	}
	id, found := d.ids[canonical(normalise(v))]
	if !found {
		return append(dst, msg...)
	}
	dst = append(dst, msg[:start]...)
	dst = append(dst, id...)
	return append(dst, msg[end:]...)
}

// idSpan finds the bytes of the value of msg's top-level "id" member.
func idSpan(msg []byte) (start, end int, ok bool) {
	d := json.NewDecoder(bytes.NewReader(msg))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return 0, 0, false
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return 0, 0, false
		}
		if k == "id" {
			end = int(d.InputOffset())
			return end - len(raw), end, true
		}
	}
	return 0, 0, false
}

// decode parses a message into maps, slices and normalised numbers.
func decode(msg []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(msg))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return normalise(v), nil
}

// normalise turns json.Numbers into int64 when integral (QEMU echoes 1.0
// as 1) and float64 otherwise, recursively.
func normalise(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, err := v.Float64()
		if err != nil {
			return string(v)
		}
		if f == float64(int64(f)) {
			return int64(f)
		}
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = normalise(x)
		}
	case []any:
		for i, x := range v {
			v[i] = normalise(x)
		}
	}
	return v
}

func takeID(v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	id, ok := m["id"]
	delete(m, "id")
	return id, ok
}

// dropTimestamp removes an event's "timestamp", which a server replaying
// the recorded events cannot reproduce.
func dropTimestamp(v any) {
	if m, ok := v.(map[string]any); ok {
		delete(m, "timestamp")
	}
}

func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// ErrMismatch is matched by errors.Is for every *MismatchError.
var ErrMismatch = errors.New("transcript: the client strayed from the transcript")

// MismatchError reports a client message the transcript does not expect.
type MismatchError struct {
	Line     int      // the transcript line of the expected message; 0 when it expects none
	Expected []byte   // the message the transcript expects; nil when it expects none
	Actual   []byte   // what the client sent; nil when it closed the stream
	Diff     []string // where they differ

	want, got string // Expected and Actual as the protocol shows them
	who       string // "client", or "server" for a peer playing the client
}

// Error shows the expected and the actual message and where they differ.
func (e *MismatchError) Error() string {
	var b strings.Builder
	switch {
	case e.Actual == nil:
		fmt.Fprintf(&b, "transcript: line %d: the %s closed the stream where the transcript expects a message", e.Line, e.who)
	case e.Expected == nil:
		fmt.Fprintf(&b, "transcript: the %s sent a message where the transcript expects none", e.who)
	default:
		fmt.Fprintf(&b, "transcript: line %d: the %s sent a message the transcript does not expect", e.Line, e.who)
	}
	if e.Expected != nil {
		fmt.Fprintf(&b, "\n- expected: %s", e.want)
	}
	if e.Actual != nil {
		fmt.Fprintf(&b, "\n+ actual:   %s", e.got)
	}
	for _, d := range e.Diff {
		b.WriteString("\n  " + d)
	}
	return b.String()
}

// Is reports whether target is ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

func (p *Peer) mismatch(i int, actual []byte) error {
	e := &MismatchError{Actual: bytes.Clone(actual), who: p.them}
	if actual != nil {
		e.got = p.d.show(actual)
	}
	if i >= 0 {
		e.Line, e.Expected = p.steps[i].line, p.steps[i].msg
		e.want = p.d.show(e.Expected)
		if actual != nil {
			_, e.Diff = p.d.match(e.Expected, actual)
		}
	}
	return e
}

// maxDiff bounds the differences a MismatchError lists.
const maxDiff = 20

// diff appends the paths where a and b differ.
func diff(path string, a, b any, out *[]string) {
	if len(*out) >= maxDiff || reflect.DeepEqual(a, b) {
		return
	}
	name := path
	if name == "" {
		name = "(message)"
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			av, ain := am[k]
			bv, bin := bm[k]
			switch {
			case !bin:
				*out = append(*out, fmt.Sprintf("%s: expected %s, missing", sub, canonical(av)))
			case !ain:
				*out = append(*out, fmt.Sprintf("%s: not expected, got %s", sub, canonical(bv)))
			default:
				diff(sub, av, bv, out)
			}
			if len(*out) >= maxDiff {
				return
			}
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		for i := range as {
			diff(fmt.Sprintf("%s[%d]", path, i), as[i], bs[i], out)
		}
		return
	}
	*out = append(*out, fmt.Sprintf("%s: expected %s, got %s", name, canonical(a), canonical(b)))
}

// UnfinishedError reports a replay that stopped before the transcript's end.
type UnfinishedError struct {
	Line    int           // the transcript line of the first step not replayed
	Client  bool          // it is a message the client should send
	Close   bool          // it is the connection's end
	Message []byte        // the message, unless Close
	At      time.Duration // when it was recorded, from the connection's start

	shown string // Message as the protocol shows it
	who   string // "client", or "server" for a peer playing the client
}

// Error says what the transcript still expects.
func (e *UnfinishedError) Error() string {
	switch {
	case e.Close:
		return fmt.Sprintf("transcript: line %d: the replay stopped before the recorded end of the connection", e.Line)
	case e.Client:
		return fmt.Sprintf("transcript: line %d: the replay stopped where the %s should send %s", e.Line, e.who, e.shown)
	default:
		return fmt.Sprintf("transcript: line %d: the replay stopped where the peer sends %s at %v (advance the replay clock)", e.Line, e.shown, e.At)
	}
}
