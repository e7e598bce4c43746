package qmp

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/jsonstream"
)

// ServerMachineConfig configures a ServerMachine. The zero value greets like QEMU
// 7.2.0 and offers the oob capability.
type ServerMachineConfig struct {
	// Version is announced in the greeting. Zero means QEMU 7.2.0 with
	// package "wirereactor".
	Version Version
	// Capabilities are offered in the greeting. Nil means ["oob"], as QEMU
	// offers; a non-nil empty slice offers none.
	Capabilities []string
	// MaxMessageSize bounds one message from the client. Zero means
	// jsonstream.DefaultMaxMessageSize (10 MiB).
	MaxMessageSize int
}

// ServerMachine is the server side of QMP as a sans-IO machine — the part of
// QEMU that speaks the protocol, without the commands. It greets the client,
// negotiates capabilities itself (before qmp_capabilities every other command
// is refused with CommandNotFound, as QEMU does), checks the shape of every
// command exactly as QEMU 7.2 words its errors, answers unparseable input with
// an id-less GenericError and resynchronises, and delivers each well-formed
// command for the application to answer with Return or ReturnError. Events
// go out with SendEvent.
//
// Drive it with the rule of package action. It is the base of the qmptest
// fake QEMU and of any QMP-speaking service.
type ServerMachine struct {
	cfg        ServerMachineConfig
	dec        jsonstream.Decoder
	negotiated bool
	oob        bool
	out, sent  []byte
	err        error
}

// NewServerMachine returns a machine for a new connection; its first action
// sends the greeting.
func NewServerMachine(cfg ServerMachineConfig) *ServerMachine {
	m := &ServerMachine{cfg: cfg}
	if m.cfg.Version == (Version{}) {
		m.cfg.Version = Version{QEMU: VersionTriple{Major: 7, Minor: 2}, Package: "wirereactor"}
	}
	if m.cfg.Capabilities == nil {
		m.cfg.Capabilities = []string{"oob"}
	}
	m.dec.Reset(jsonstream.Config{MaxMessageSize: cfg.MaxMessageSize})
	m.out = appendGreeting(m.out, m.cfg.Version, m.cfg.Capabilities)
	return m
}

func appendGreeting(dst []byte, v Version, caps []string) []byte {
	dst = append(dst, `{"QMP": {"version": {"qemu": {"micro": `...)
	dst = strconv.AppendInt(dst, int64(v.QEMU.Micro), 10)
	dst = append(dst, `, "minor": `...)
	dst = strconv.AppendInt(dst, int64(v.QEMU.Minor), 10)
	dst = append(dst, `, "major": `...)
	dst = strconv.AppendInt(dst, int64(v.QEMU.Major), 10)
	dst = append(dst, `}, "package": `...)
	dst = appendString(dst, v.Package)
	dst = append(dst, `}, "capabilities": [`...)
	for i, c := range caps {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendString(dst, c)
	}
	return append(dst, "]}}\r\n"...)
}

// Negotiated reports whether the client completed qmp_capabilities.
func (m *ServerMachine) Negotiated() bool { return m.negotiated }

// OOBEnabled reports whether the client enabled the oob capability.
func (m *ServerMachine) OOBEnabled() bool { return m.oob }

// Feed hands the machine bytes from the client. It keeps referencing p until
// Next returns WantMore or Error.
func (m *ServerMachine) Feed(p []byte) {
	if m.err == nil {
		m.dec.Feed(p)
	}
}

// FeedEOF tells the machine the client closed the stream. A stream ending
// inside a message is an Error matching io.ErrUnexpectedEOF; a clean end,
// once everything before it is taken and sent, is a terminal Error with
// io.EOF itself.
func (m *ServerMachine) FeedEOF() {
	if m.err == nil {
		m.dec.FeedEOF()
	}
}

// Next returns the next action. Send bytes stay valid until the next call to
// Next. A delivered Command owns its memory (a fresh copy of the message).
func (m *ServerMachine) Next() action.Action[Command] {
	if m.err != nil {
		return action.Fail[Command](m.err)
	}
	for {
		if len(m.out) > 0 {
			m.sent, m.out = m.out, m.sent[:0]
			return action.SendBytes[Command](m.sent)
		}
		raw, err := m.dec.Next()
		if err == nil && raw == nil {
			return action.Want[Command]()
		}
		if err == io.EOF {
			m.err = err // a clean end
			return action.Fail[Command](err)
		}
		if err != nil {
			if se := syntaxError(err); se != nil {
				if se.DepthExceeded {
					m.appendError(nil, "GenericError", "JSON nesting depth limit exceeded")
				} else {
					m.appendError(nil, "GenericError", "JSON parse error, "+se.Msg)
				}
				continue
			}
			m.err = err
			return action.Fail[Command](err)
		}
		if cmd, ok := m.handle(raw); ok {
			return action.DeliverValue(cmd)
		}
	}
}

// syntaxError returns err as a recoverable syntax error, or nil. (A separate
// function keeps errors.As's target off the heap on the hot path.)
func syntaxError(err error) *jsonstream.SyntaxError {
	var se *jsonstream.SyntaxError
	if errors.As(err, &se) && !se.Truncated {
		return se
	}
	return nil
}

// handle checks one message as QEMU's dispatcher does; it answers bad ones
// itself and returns the commands the application must answer.
func (m *ServerMachine) handle(raw []byte) (Command, bool) {
	if raw[0] != '{' {
		m.appendError(nil, "GenericError", "QMP input must be a JSON object")
		return Command{}, false
	}
	var name, verb, args, id []byte
	var bad string
	var seen uint8 // known members met so far, to catch duplicates
	dup := false
	it := newMembers(raw)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		for bit, key := range [...]string{"execute", "exec-oob", "arguments", "id"} {
			if keyIs(k, key) {
				dup = dup || seen&(1<<bit) != 0
				seen |= 1 << bit
			}
		}
		switch {
		case keyIs(k, "execute"), keyIs(k, "exec-oob") && m.oob:
			if v[0] != '"' && bad == "" {
				bad = "QMP input member '" + string(k[1:len(k)-1]) + "' must be a string"
			}
			if verb != nil && bad == "" {
				bad = "QMP input member 'execute' clashes with 'exec-oob'"
			}
			name, verb = v, k
		case keyIs(k, "arguments"):
			if v[0] != '{' && bad == "" {
				bad = "QMP input member 'arguments' must be an object"
			}
			args = v
		case keyIs(k, "id"):
			id = v
		default:
			if bad == "" {
				key, _ := unquote(k)
				bad = "QMP input member '" + key + "' is unexpected"
			}
		}
	}
	if dup {
		// QEMU's parser rejects the whole message, so there is no id.
		m.appendError(nil, "GenericError", "JSON parse error, duplicate key")
		return Command{}, false
	}
	if bad == "" && verb == nil {
		bad = "QMP input lacks member 'execute'"
	}
	if bad != "" {
		m.appendError(id, "GenericError", bad)
		return Command{}, false
	}
	cmdName, ok := unquote(name)
	if !ok {
		m.appendError(id, "GenericError", "QMP input member 'execute' must be a string")
		return Command{}, false
	}
	if !m.negotiated {
		if cmdName != "qmp_capabilities" {
			m.appendError(id, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
			return Command{}, false
		}
		m.negotiate(id, args)
		return Command{}, false
	}
	if cmdName == "qmp_capabilities" {
		m.appendError(id, "CommandNotFound", "Capabilities negotiation is already complete, command ignored")
		return Command{}, false
	}
	own := clone(raw)
	c := Command{Name: cmdName, OOB: keyIs(verb, "exec-oob"), Raw: own}
	if args != nil {
		c.Arguments = rebase(own, raw, args)
	}
	if id != nil {
		c.ID = rebase(own, raw, id)
	}
	return c, true
}

// rebase returns the slice of own that sub is of raw (own is a copy of raw).
func rebase(own, raw, sub []byte) []byte {
	off := cap(raw) - cap(sub)
	return own[off : off+len(sub) : off+len(sub)]
}

// negotiate runs qmp_capabilities with the client's arguments.
func (m *ServerMachine) negotiate(id, args []byte) {
	oob := false
	if args != nil {
		it := newMembers(args)
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			if !keyIs(k, "enable") {
				key, _ := unquote(k)
				m.appendError(id, "GenericError", "Parameter '"+key+"' is unexpected")
				return
			}
			if v[0] != '[' {
				m.appendError(id, "GenericError", "Invalid parameter type for 'enable', expected: array")
				return
			}
			for i := skipSpace(v, 1); i < len(v) && v[i] != ']'; {
				end, _ := skipValue(v, i)
				capName, ok := unquote(v[i:end])
				switch {
				case !ok:
					m.appendError(id, "GenericError", "Invalid parameter type for 'enable', expected: string")
					return
				case capName != "oob":
					m.appendError(id, "GenericError", "Parameter 'null' does not accept value '"+capName+"'")
					return
				case !m.offers("oob"):
					m.appendError(id, "GenericError", "Capability 'oob' not available")
					return
				}
				oob = true
				i = skipSpace(v, end)
				if i < len(v) && v[i] == ',' {
					i = skipSpace(v, i+1)
				}
			}
		}
	}
	m.negotiated, m.oob = true, oob
	m.appendReturn(id, nil)
}

func (m *ServerMachine) offers(capName string) bool {
	for _, c := range m.cfg.Capabilities {
		if c == capName {
			return true
		}
	}
	return false
}

// Return queues the success response {"return": result, "id": id}. id is
// the command's raw id, echoed verbatim (nil for none); result is raw JSON,
// nil meaning {}. Both are copied. It returns the machine's terminal error,
// if any, or an error when result is not valid JSON.
func (m *ServerMachine) Return(id, result []byte) error {
	if m.err != nil {
		return m.err
	}
	if result != nil && !json.Valid(result) {
		return errors.New("qmp: return value is not valid JSON")
	}
	m.appendReturn(id, result)
	return nil
}

// ReturnError queues the error response
// {"id": id, "error": {"class": class, "desc": desc}} (without "id" when id
// is nil).
func (m *ServerMachine) ReturnError(id []byte, class, desc string) error {
	if m.err != nil {
		return m.err
	}
	m.appendError(id, class, desc)
	return nil
}

// SendEvent queues the event {"timestamp": …, "event": name, "data": data};
// data is raw JSON (nil for none) and is copied. The timestamp is passed in:
// the machine never reads the clock. Before negotiation events are discarded,
// as QEMU does, and SendEvent reports false.
func (m *ServerMachine) SendEvent(name string, data []byte, ts time.Time) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	if data != nil && !json.Valid(data) {
		return false, errors.New("qmp: event data is not valid JSON")
	}
	if !m.negotiated {
		return false, nil
	}
	m.out = append(m.out, `{"timestamp": {"seconds": `...)
	m.out = strconv.AppendInt(m.out, ts.Unix(), 10)
	m.out = append(m.out, `, "microseconds": `...)
	m.out = strconv.AppendInt(m.out, int64(ts.Nanosecond()/1000), 10)
	m.out = append(m.out, `}, "event": `...)
	m.out = appendString(m.out, name)
	if data != nil {
		m.out = append(m.out, `, "data": `...)
		m.out = append(m.out, data...)
	}
	m.out = append(m.out, "}\r\n"...)
	return true, nil
}

func (m *ServerMachine) appendReturn(id, result []byte) {
	m.out = append(m.out, `{"return": `...)
	if result == nil {
		m.out = append(m.out, "{}"...)
	} else {
		m.out = append(m.out, result...)
	}
	if id != nil {
		m.out = append(m.out, `, "id": `...)
		m.out = append(m.out, id...)
	}
	m.out = append(m.out, "}\r\n"...)
}

func (m *ServerMachine) appendError(id []byte, class, desc string) {
	m.out = append(m.out, '{')
	if id != nil {
		m.out = append(m.out, `"id": `...)
		m.out = append(m.out, id...)
		m.out = append(m.out, ", "...)
	}
	m.out = append(m.out, `"error": {"class": `...)
	m.out = appendString(m.out, class)
	m.out = append(m.out, `, "desc": `...)
	m.out = appendString(m.out, desc)
	m.out = append(m.out, "}}\r\n"...)
}
