package qmp

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/jsonstream"
)

// ClientMachineConfig configures a ClientMachine. The zero value talks to QEMU:
// wait for the greeting, negotiate, enable oob when offered.
type ClientMachineConfig struct {
	// SkipGreeting: the peer sends no greeting (qemu-ga). The machine starts
	// negotiating at once, or is running at once with SkipNegotiation.
	SkipGreeting bool
	// SkipNegotiation: do not send qmp_capabilities (qemu-ga, or a peer that
	// was negotiated already). The machine is running right after the
	// greeting (or at once with SkipGreeting).
	SkipNegotiation bool
	// DisableOOB: do not enable the oob capability even when offered.
	DisableOOB bool
	// MaxMessageSize bounds one message from the server. Zero means
	// jsonstream.DefaultMaxMessageSize (10 MiB).
	MaxMessageSize int
	// IDBase: the machine's ids are IDBase+1, IDBase+2, … A driver that
	// makes a new machine for each connection passes the previous machine's
	// LastID, so ids stay unique across reconnects (QEMU sends the reply to
	// a command still running when its client left to the next client).
	IDBase uint64
}

// ClientState is where a ClientMachine is in its session.
type ClientState uint8

const (
	// ClientStateAwaitingGreeting: waiting for the server's greeting.
	ClientStateAwaitingGreeting ClientState = iota
	// ClientStateNegotiating: qmp_capabilities sent, waiting for its reply.
	ClientStateNegotiating
	// ClientStateRunning: the handshake is over; commands flow.
	ClientStateRunning
	// ClientStateFailed: the machine reported an Error and is terminal (io.EOF after
	// a clean end of the stream).
	ClientStateFailed
)

var clientStateNames = [...]string{"awaiting-greeting", "negotiating", "running", "failed"}

// String returns the state's lower-case name ("awaiting-greeting",
// "negotiating", "running", "failed") for logs and error messages.
func (s ClientState) String() string {
	if int(s) < len(clientStateNames) {
		return clientStateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ReceivedKind says what a Received value carries.
type ReceivedKind uint8

const (
	// ReceivedKindGreeting: the server's greeting arrived (Received.Greeting).
	ReceivedKindGreeting ReceivedKind = iota + 1
	// ReceivedKindReady: the opening handshake is over; commands held by Execute
	// are on their way. Delivered exactly once per connection.
	ReceivedKindReady
	// ReceivedKindReply: the response to a command (Received.ID, Received.Response).
	ReceivedKindReply
	// ReceivedKindEvent: an asynchronous event (Received.Event).
	ReceivedKindEvent
	// ReceivedKindIDLessError: an error response without an id while no command
	// was in flight (Received.Response). It belongs to nobody; it is
	// reported so it can be logged.
	ReceivedKindIDLessError
)

var receivedKindNames = [...]string{"", "greeting", "ready", "reply", "event", "id-less-error"}

// String returns the kind's lower-case name ("greeting", "ready", "reply",
// "event", "id-less-error") for logs.
func (k ReceivedKind) String() string {
	if int(k) < len(receivedKindNames) && k != 0 {
		return receivedKindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Received is what a ClientMachine delivers.
//
// Ownership: every byte slice in a Received value (Response, Event and
// Greeting raw fields) is a fresh copy owned by the receiver — never a view of
// a buffer the machine reuses — so a reply can be handed to another goroutine
// and kept for any time.
type Received struct {
	Kind ReceivedKind
	// ID is, for ReceivedKindReply, the id Execute returned for the command.
	ID uint64
	// Response is set for ReceivedKindReply and ReceivedKindIDLessError. For a reply to an
	// id-less error attributed to the only command in flight,
	// Response.ID is nil and Response.Error is set.
	Response Response
	// Event is set for ReceivedKindEvent.
	Event Event
	// Greeting is set for ReceivedKindGreeting and ReceivedKindReady (nil when the greeting
	// was skipped).
	Greeting *Greeting
}

// String summarises the value in one line for logs and tests, e.g.
// `reply #3 {"status": "running"}` or "event STOP"; it omits the raw
// greeting and event data.
func (r Received) String() string {
	switch r.Kind {
	case ReceivedKindReply:
		if r.Response.Error != nil {
			return fmt.Sprintf("reply #%d error %s", r.ID, r.Response.Error)
		}
		return fmt.Sprintf("reply #%d %s", r.ID, r.Response.Return)
	case ReceivedKindEvent:
		return "event " + r.Event.Name
	case ReceivedKindIDLessError:
		return "id-less error " + r.Response.Error.String()
	}
	return r.Kind.String()
}

// ClientMachine is the client side of QMP as a sans-IO machine: it reads the
// greeting, negotiates capabilities (enabling oob when offered), then sends
// the commands given to Execute and ExecuteOOB and delivers their replies,
// correlated by id, and the server's events.
//
// Drive it with the rule of package action: Feed bytes from the server (or
// call Execute), then call Next until WantMore or Error.
//
// Ids are unsigned integers assigned from a counter that lives as long as the
// value: Reset reuses the machine for a new connection and keeps counting, so
// a reply to a command of an earlier connection (QEMU sends it to the next
// client) never matches a new command; it is dropped and counted.
//
// Id-less errors (QEMU's answer to input it could not parse) are attributed
// to the command in flight when exactly one is; with none in flight they are
// delivered as ReceivedKindIDLessError; with more than one the session cannot tell
// whose command failed and the machine fails with a *ProtocolError.
//
// Anything else from the server that is not QMP — invalid JSON, a value that
// is not an object, a message with neither return, error nor event, a message
// over the size limit — is an Error: a server that garbles its output cannot
// be trusted to correlate replies.
//
// A ClientMachine is not safe for concurrent use; a driver that calls it from
// several goroutines serialises the calls.
type ClientMachine struct {
	cfg     ClientMachineConfig
	dec     jsonstream.Decoder
	state   ClientState
	nextID  uint64
	capsID  uint64
	pending map[uint64]bool // in-flight command ids → oob
	oob     bool            // oob enabled by negotiation
	wantOOB bool            // oob requested in qmp_capabilities
	greet   *Greeting
	dropped uint64
	eof     bool

	out  []byte // output being gathered
	sent []byte // output handed out by the last Send
	held []byte // commands given before Running, sent after the handshake

	queue [2]Received // deliveries waiting for Next
	nq    int
	err   error
}

// NewClientMachine returns a machine for a new connection.
func NewClientMachine(cfg ClientMachineConfig) *ClientMachine {
	m := &ClientMachine{cfg: cfg, pending: make(map[uint64]bool), nextID: cfg.IDBase}
	m.start()
	return m
}

func (m *ClientMachine) start() {
	m.dec.Reset(jsonstream.Config{MaxMessageSize: m.cfg.MaxMessageSize})
	m.state = ClientStateAwaitingGreeting
	if m.cfg.SkipGreeting {
		m.afterGreeting()
	}
}

// Reset readies m for a new connection: the handshake starts over, pending
// commands and held output are forgotten (their replies, should they come,
// are dropped), and the id counter and the dropped count carry on.
func (m *ClientMachine) Reset() {
	clear(m.pending)
	m.out, m.sent, m.held = m.out[:0], m.sent[:0], m.held[:0]
	m.nq, m.err, m.eof, m.oob, m.wantOOB, m.greet, m.capsID = 0, nil, false, false, false, nil, 0
	m.start()
}

// State returns where the machine is in the session.
func (m *ClientMachine) State() ClientState { return m.state }

// Greeting returns the server's greeting, nil before it arrives or when
// skipped.
func (m *ClientMachine) Greeting() *Greeting { return m.greet }

// OOBEnabled reports whether negotiation enabled the oob capability.
func (m *ClientMachine) OOBEnabled() bool { return m.oob }

// Pending returns the number of commands sent or held whose reply has not
// arrived.
func (m *ClientMachine) Pending() int { return len(m.pending) }

// Dropped returns how many replies carried an id that matched no pending
// command (stale replies from an earlier connection, replies to cancelled
// commands) and were dropped, over the life of the value.
func (m *ClientMachine) Dropped() uint64 { return m.dropped }

// LastID returns the last id the machine assigned (IDBase when none).
func (m *ClientMachine) LastID() uint64 { return m.nextID }

// Err returns the terminal error, nil while the machine is healthy.
func (m *ClientMachine) Err() error { return m.err }

// Execute queues command cmd with args (a JSON object, or nil for none) and
// returns the id it assigned; the reply is delivered as ReceivedKindReply with that
// id. The command and args are copied: args may be reused on return. Before
// the handshake is over the command is held and sent right after it.
func (m *ClientMachine) Execute(cmd string, args []byte) (uint64, error) {
	return m.execute("execute", cmd, args)
}

// ExecuteOOB is Execute with exec-oob: the server may run it at once and
// answer before earlier commands. It needs the oob capability enabled
// (ErrOOBUnavailable otherwise).
func (m *ClientMachine) ExecuteOOB(cmd string, args []byte) (uint64, error) {
	if m.err == nil && !m.oob {
		return 0, ErrOOBUnavailable
	}
	return m.execute("exec-oob", cmd, args)
}

func (m *ClientMachine) execute(verb, cmd string, args []byte) (uint64, error) {
	if m.err != nil {
		return 0, m.err
	}
	if cmd == "" {
		return 0, errors.New("qmp: empty command name")
	}
	if len(args) > 0 && !isObject(args) {
		return 0, fmt.Errorf("qmp: arguments of %s are not a JSON object", cmd)
	}
	m.nextID++
	id := m.nextID
	if m.state == ClientStateRunning {
		m.out = appendCommand(m.out, verb, cmd, args, id)
	} else {
		m.held = appendCommand(m.held, verb, cmd, args, id)
	}
	m.pending[id] = verb == "exec-oob"
	return id, nil
}

// ExecuteDetached registers command cmd with args like Execute but returns
// the command's bytes instead of queuing them for a Send action: for a
// driver that must write this one command itself, with file descriptors
// attached (SCM_RIGHTS) as QEMU's getfd and add-fd need, say. The reply is
// delivered as ReceivedKindReply with the returned id. msg is a fresh slice the
// caller owns. The handshake must be over (ErrNotRunning otherwise): a held
// command could not be handed out in order. A driver that does not send msg
// after all calls Cancel.
func (m *ClientMachine) ExecuteDetached(cmd string, args []byte) (id uint64, msg []byte, err error) {
	if m.err == nil && m.state != ClientStateRunning {
		return 0, nil, ErrNotRunning
	}
	out := m.out
	m.out = nil
	id, err = m.execute("execute", cmd, args)
	msg, m.out = m.out, out
	return id, msg, err
}

// Cancel forgets command id: its reply, should it come, is dropped and
// counted. It reports whether id was pending. (QMP cannot withdraw a command
// from the server; this only stops waiting for it.)
func (m *ClientMachine) Cancel(id uint64) bool {
	_, ok := m.pending[id]
	delete(m.pending, id)
	return ok
}

// appendCommand appends {"execute": cmd, "arguments": args, "id": id}.
func appendCommand(dst []byte, verb, cmd string, args []byte, id uint64) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, verb...)
	dst = append(dst, `": `...)
	dst = appendString(dst, cmd)
	if len(args) > 0 {
		dst = append(dst, `, "arguments": `...)
		dst = append(dst, args...)
	}
	dst = append(dst, `, "id": `...)
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, "}\n"...)
}

// Feed hands the machine bytes from the server. It keeps referencing p until
// Next returns WantMore or Error.
func (m *ClientMachine) Feed(p []byte) {
	if m.err == nil {
		m.dec.Feed(p)
	}
}

// FeedEOF tells the machine the server closed the stream. A stream that ends
// inside a message or before the handshake is over is an Error matching
// io.ErrUnexpectedEOF; a clean end, once everything before it is taken, is
// a terminal Error with io.EOF itself.
func (m *ClientMachine) FeedEOF() {
	if m.err == nil {
		m.dec.FeedEOF()
		m.eof = true
	}
}

// Next returns the next action. Send bytes stay valid until the next call to
// Next (the machine double-buffers its output, so Execute may be called while
// a driver still writes them). Delivered values own their memory.
func (m *ClientMachine) Next() action.Action[Received] {
	if m.err != nil {
		return action.Fail[Received](m.err)
	}
	for {
		if m.nq > 0 {
			r := m.queue[0]
			m.queue[0], m.queue[1] = m.queue[1], Received{}
			m.nq--
			return action.DeliverValue(r)
		}
		if len(m.out) > 0 {
			m.sent, m.out = m.out, m.sent[:0]
			return action.SendBytes[Received](m.sent)
		}
		raw, err := m.dec.Next()
		if err != nil {
			if err == io.EOF {
				if m.state != ClientStateRunning {
					return m.fail(m.handshakeError(nil, io.ErrUnexpectedEOF))
				}
				return m.fail(io.EOF) // a clean end
			}
			return m.fail(err)
		}
		if raw == nil {
			return action.Want[Received]()
		}
		if err := m.handle(raw); err != nil {
			return m.fail(err)
		}
	}
}

func (m *ClientMachine) fail(err error) action.Action[Received] {
	m.err = err
	m.state = ClientStateFailed
	m.nq = 0
	return action.Fail[Received](err)
}

func (m *ClientMachine) deliver(r Received) { m.queue[m.nq] = r; m.nq++ }

func (m *ClientMachine) handshakeError(raw []byte, err error) error {
	if m.state == ClientStateAwaitingGreeting {
		return &GreetingError{Raw: clone(raw), Err: err}
	}
	return &NegotiationError{Raw: clone(raw), Err: err}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// handle routes one message from the server; raw aliases the decoder.
func (m *ClientMachine) handle(raw []byte) error {
	if raw[0] != '{' {
		if m.state == ClientStateAwaitingGreeting {
			return m.handshakeError(raw, errors.New("message is not a JSON object"))
		}
		return &ProtocolError{Msg: "server sent a message that is not a JSON object", Raw: clone(raw)}
	}
	var parsed serverMessage
	msg := &parsed
	if err := parseServerMessage(raw, msg); err != nil {
		return &ProtocolError{Msg: "server sent a malformed message", Raw: clone(raw), Err: err}
	}
	if m.state == ClientStateAwaitingGreeting {
		if msg.kind != msgGreeting {
			return m.handshakeError(raw, errors.New("first message lacks member 'QMP'"))
		}
		g, err := parseGreeting(raw)
		if err != nil {
			return m.handshakeError(raw, err)
		}
		m.greet = g
		m.deliver(Received{Kind: ReceivedKindGreeting, Greeting: g})
		m.afterGreeting()
		return nil
	}
	switch msg.kind {
	case msgEvent:
		own := clone(raw)
		msg.rebase(own, raw)
		ev, err := msg.eventValue(own)
		if err != nil {
			return &ProtocolError{Msg: "server sent a malformed event", Raw: own, Err: err}
		}
		m.deliver(Received{Kind: ReceivedKindEvent, Event: ev})
		return nil
	case msgResponse:
		return m.handleResponse(msg, raw)
	case msgGreeting:
		return &ProtocolError{Msg: "server sent a second greeting", Raw: clone(raw)}
	default:
		return &ProtocolError{Msg: "server sent a message with neither 'return', 'error' nor 'event'", Raw: clone(raw)}
	}
}

func (m *ClientMachine) handleResponse(msg *serverMessage, raw []byte) error {
	var id uint64
	known := false
	if msg.id != nil {
		if n, ok := parseInt(msg.id); ok && n > 0 {
			id = uint64(n)
			_, known = m.pending[id]
		}
		if !known {
			m.dropped++
			return nil
		}
	}
	if m.state == ClientStateNegotiating && (msg.id == nil || id == m.capsID) {
		delete(m.pending, m.capsID)
		if msg.errInfo != nil {
			info, err := parseErrorInfo(msg.errInfo)
			if err != nil {
				return &NegotiationError{Raw: clone(raw), Err: err}
			}
			return &NegotiationError{Info: info, Raw: clone(raw)}
		}
		m.ready()
		return nil
	}
	if msg.id == nil {
		if msg.errInfo == nil {
			return &ProtocolError{Msg: "server sent a success response without an id", Raw: clone(raw)}
		}
		switch len(m.pending) {
		case 0:
		case 1:
			for only := range m.pending {
				id = only
			}
		default:
			return &ProtocolError{Msg: fmt.Sprintf("server sent an error without an id while %d commands were in flight; it cannot be attributed", len(m.pending)), Raw: clone(raw)}
		}
	}
	own := clone(raw)
	msg.rebase(own, raw)
	resp, err := msg.response(own)
	if err != nil {
		return &ProtocolError{Msg: "server sent a malformed response", Raw: own, Err: err}
	}
	if id == 0 {
		m.deliver(Received{Kind: ReceivedKindIDLessError, Response: resp})
		return nil
	}
	delete(m.pending, id)
	m.deliver(Received{Kind: ReceivedKindReply, ID: id, Response: resp})
	return nil
}

// afterGreeting starts negotiation, or finishes the handshake when skipped.
func (m *ClientMachine) afterGreeting() {
	if m.cfg.SkipNegotiation {
		m.ready()
		return
	}
	m.state = ClientStateNegotiating
	m.nextID++
	m.capsID = m.nextID
	m.pending[m.capsID] = false
	var args []byte
	if !m.cfg.DisableOOB && m.greet != nil && m.greet.HasCapability("oob") {
		args = []byte(`{"enable": ["oob"]}`)
		m.wantOOB = true
	}
	m.out = appendCommand(m.out, "execute", "qmp_capabilities", args, m.capsID)
}

func (m *ClientMachine) ready() {
	m.state = ClientStateRunning
	m.oob = m.wantOOB
	m.out = append(m.out, m.held...)
	m.held = m.held[:0]
	m.deliver(Received{Kind: ReceivedKindReady, Greeting: m.greet})
}
