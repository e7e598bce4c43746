package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// VersionTriple is QEMU's version number, as in the greeting and in
// query-version.
type VersionTriple struct {
	Major int `json:"major"`
	Minor int `json:"minor"`
	Micro int `json:"micro"`
}

// String returns the version as "7.2.22".
func (v VersionTriple) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

// Version is the server's version: QEMU's triple and the distribution's
// package string ("Debian 1:7.2+dfsg-7+deb12u18+b3").
type Version struct {
	QEMU    VersionTriple `json:"qemu"`
	Package string        `json:"package"`
}

// Greeting is the message a QMP server sends when a client connects:
//
//	{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "…"}, "capabilities": ["oob"]}}
type Greeting struct {
	Version      Version
	Capabilities []string
	// Raw is the whole message as received (its own copy).
	Raw json.RawMessage
}

// HasCapability reports whether the server offered capability name.
func (g *Greeting) HasCapability(name string) bool {
	for _, c := range g.Capabilities {
		if c == name {
			return true
		}
	}
	return false
}

// ErrorInfo is the "error" member of an error response: the error class
// (GenericError, CommandNotFound, DeviceNotFound, …) and a human description.
type ErrorInfo struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

// String returns "Class: Desc", the form QEMU's own tools print.
func (e *ErrorInfo) String() string { return e.Class + ": " + e.Desc }

// Response is the server's answer to a command: a success response
//
//	{"return": {}, "id": 1}
//
// or an error response
//
//	{"id": 1, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}
//
// Error responses to input the server could not parse carry no id.
type Response struct {
	// ID is the id as the server echoed it (raw JSON), nil when absent.
	// Compare ids with SameID, never byte-wise.
	ID json.RawMessage
	// Return is the raw "return" member of a success response; nil for an
	// error response.
	Return json.RawMessage
	// Error is set for an error response.
	Error *ErrorInfo
	// Raw is the whole message. ID and Return are sub-slices of it.
	Raw json.RawMessage
}

// Event is an asynchronous event:
//
//	{"timestamp": {"seconds": 1795265050, "microseconds": 841166}, "event": "STOP"}
type Event struct {
	Name string
	// Data is the raw "data" member, nil when the event has none.
	Data json.RawMessage
	// Timestamp is when the server emitted the event (seconds and
	// microseconds since the Unix epoch on the wire).
	Timestamp time.Time
	// Raw is the whole message; Data is a sub-slice of it.
	Raw json.RawMessage
}

// Command is a command a client sent, as a server sees it:
//
//	{"execute": "query-status", "arguments": {…}, "id": 7}
//	{"exec-oob": "migrate-pause", "id": 8}
type Command struct {
	Name string
	// OOB is set for exec-oob.
	OOB bool
	// Arguments is the raw "arguments" object, nil when absent.
	Arguments json.RawMessage
	// ID is the raw id, exactly as the client wrote it (nil when absent);
	// replies echo it verbatim.
	ID json.RawMessage
	// Raw is the whole message; Arguments and ID are sub-slices of it.
	Raw json.RawMessage
}

// messageKind classifies a message a server sent.
type messageKind uint8

const (
	msgUnknown messageKind = iota
	msgGreeting
	msgResponse
	msgEvent
)

// serverMessage is what a client reads, parsed just enough to route it.
type serverMessage struct {
	kind    messageKind
	id      []byte
	ret     []byte
	errInfo []byte
	event   []byte
	data    []byte
	ts      []byte
	qmp     []byte
}

// rebase moves every field from raw onto own, a copy of raw.
func (m *serverMessage) rebase(own, raw []byte) {
	for _, f := range [...]*[]byte{&m.id, &m.ret, &m.errInfo, &m.event, &m.data, &m.ts, &m.qmp} {
		if *f != nil {
			*f = rebase(own, raw, *f)
		}
	}
}

// parseServerMessage routes raw, a valid JSON value, into *m without
// allocating. (Into a pointer: returning the 176-byte struct cost more than
// routing a short reply.)
func parseServerMessage(raw []byte, m *serverMessage) error {
	*m = serverMessage{}
	it := newMembers(raw)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		// One look for escapes per key, then a switch that compares the
		// bytes in place, instead of one keyIs call per candidate name.
		name := k[1 : len(k)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			s, ok := unquote(k) // an escaped key: rare
			if !ok {
				continue
			}
			name = []byte(s)
		}
		switch string(name) {
		case "id":
			m.id = v
		case "return":
			m.ret = v
		case "error":
			m.errInfo = v
		case "event":
			m.event = v
		case "data":
			m.data = v
		case "timestamp":
			m.ts = v
		case "QMP":
			m.qmp = v
		}
	}
	if it.err != nil {
		return fmt.Errorf("server message is not a JSON object")
	}
	switch {
	case m.qmp != nil:
		m.kind = msgGreeting
	case m.event != nil:
		m.kind = msgEvent
	case m.ret != nil || m.errInfo != nil:
		m.kind = msgResponse
	}
	return nil
}

// ParseGreeting decodes a greeting message. The result keeps its own copy of
// raw.
func ParseGreeting(raw []byte) (*Greeting, error) {
	g, err := parseGreeting(raw)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	return g, nil
}

// parseGreeting is ParseGreeting with errors the machine wraps itself.
func parseGreeting(raw []byte) (*Greeting, error) {
	var g struct {
		QMP *struct {
			Version      *Version  `json:"version"`
			Capabilities *[]string `json:"capabilities"`
		} `json:"QMP"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("greeting does not decode: %w", err)
	}
	switch {
	case g.QMP == nil:
		return nil, fmt.Errorf("greeting lacks member 'QMP'")
	case g.QMP.Version == nil:
		return nil, fmt.Errorf("greeting lacks member 'QMP.version'")
	case g.QMP.Capabilities == nil:
		return nil, fmt.Errorf("greeting lacks member 'QMP.capabilities'")
	}
	return &Greeting{Version: *g.QMP.Version, Capabilities: *g.QMP.Capabilities, Raw: append(json.RawMessage(nil), raw...)}, nil
}

// ParseResponse decodes a success or error response. The result's raw
// fields alias raw: pass a copy if raw will be reused.
func ParseResponse(raw []byte) (Response, error) {
	m, err := parseServerMessageOf(raw, msgResponse, "response",
		"message is not a response: it has neither 'return' nor 'error'")
	if err != nil {
		return Response{}, fmt.Errorf("qmp: %w", err)
	}
	r, err := m.response(raw)
	if err != nil {
		return Response{}, fmt.Errorf("qmp: %w", err)
	}
	return r, nil
}

// parseServerMessageOf parses raw, a whole message that must be valid JSON
// and of the given kind: what names the kind in the error for invalid JSON,
// wrongKind is the error for another kind.
func parseServerMessageOf(raw []byte, kind messageKind, what, wrongKind string) (serverMessage, error) {
	if !json.Valid(raw) {
		return serverMessage{}, fmt.Errorf("%s is not valid JSON", what)
	}
	var m serverMessage
	if err := parseServerMessage(raw, &m); err != nil {
		return serverMessage{}, err
	}
	if m.kind != kind {
		return serverMessage{}, errors.New(wrongKind)
	}
	return m, nil
}

func (m *serverMessage) response(raw []byte) (Response, error) {
	r := Response{ID: m.id, Raw: raw}
	if m.errInfo == nil {
		r.Return = m.ret
		return r, nil
	}
	info, err := parseErrorInfo(m.errInfo)
	if err != nil {
		return Response{}, err
	}
	r.Error = info
	return r, nil
}

func parseErrorInfo(raw []byte) (*ErrorInfo, error) {
	info := &ErrorInfo{}
	it := newMembers(raw)
	var okClass, okDesc bool
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "class"):
			info.Class, okClass = unquote(v)
		case keyIs(k, "desc"):
			info.Desc, okDesc = unquote(v)
		}
	}
	if it.err != nil || !okClass || !okDesc {
		return nil, fmt.Errorf("error member is not an object with string members 'class' and 'desc'")
	}
	return info, nil
}

// ParseEvent decodes an event message. The result's raw fields alias raw.
func ParseEvent(raw []byte) (Event, error) {
	m, err := parseServerMessageOf(raw, msgEvent, "event",
		"message is not an event: it lacks member 'event'")
	if err != nil {
		return Event{}, fmt.Errorf("qmp: %w", err)
	}
	ev, err := m.eventValue(raw)
	if err != nil {
		return Event{}, fmt.Errorf("qmp: %w", err)
	}
	return ev, nil
}

func (m *serverMessage) eventValue(raw []byte) (Event, error) {
	name, ok := unquote(m.event)
	if !ok {
		return Event{}, fmt.Errorf("event member 'event' is not a string")
	}
	ev := Event{Name: name, Data: m.data, Raw: raw}
	if m.ts != nil {
		var sec, usec []byte
		it := newMembers(m.ts)
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			switch {
			case keyIs(k, "seconds"):
				sec = v
			case keyIs(k, "microseconds"):
				usec = v
			}
		}
		s, okS := parseInt(sec)
		us, okU := parseInt(usec)
		if it.err != nil || !okS || !okU {
			return Event{}, fmt.Errorf("event timestamp is not an object with integer 'seconds' and 'microseconds'")
		}
		ev.Timestamp = time.Unix(s, us*1000)
	}
	return ev, nil
}
