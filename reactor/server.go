package reactor

import (
	"fmt"
	"io"
	"slices"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// Default limits of ServerMachineConfig. DefaultMaxSettingsBytes is
// ClientMachineConfig's default too.
const (
	DefaultMaxPendingRequests = 64
	DefaultMaxRequestBytes    = 64 << 20
	DefaultMaxSettingsBytes   = 64 << 10
)

// ServerMachineConfig configures a ServerMachine. The zero value is a full-duplex
// server with Mercurial's encodings and the default limits.
type ServerMachineConfig struct {
	// DeferOutput holds every output frame until FeedEOF, for half-duplex
	// transports that cannot send before all input is read.
	DeferOutput bool
	// MaxPendingRequests bounds the command requests partially received at
	// once (DefaultMaxPendingRequests when zero).
	MaxPendingRequests int
	// MaxRequestBytes bounds the bytes buffered for one request: its CBOR
	// request payload plus its command data (DefaultMaxRequestBytes when
	// zero).
	MaxRequestBytes int
	// MaxSettingsBytes bounds the sender-protocol-settings payload
	// (DefaultMaxSettingsBytes when zero).
	MaxSettingsBytes int
	// MaxDecodedBytes bounds the decoded size of one request (see
	// hgcbor.DecodeOptions): its CBOR as hgcbor would decode it (which
	// covers the arguments as Args.Map decodes them and the redirect),
	// plus the copies its Command keeps (the name, the encoded arguments). A request over it is an Error wrapping
	// action.ErrLimit (an *action.LimitError), found before anything is
	// decoded. Zero means hgcbor.DefaultDecodedSize of the request's
	// payload: four times its bytes, and at least 64 KiB.
	MaxDecodedBytes int64
	// MaxFramePayload is the largest payload put in an output frame
	// (frame.DefaultMaxPayload when zero).
	MaxFramePayload int
	// Encodings lists the content encodings the server offers, most
	// preferred first (DefaultServerEncodings when nil).
	Encodings []string
}

// ServerState is where a ServerMachine is in its conversation, named as
// Mercurial names its states.
type ServerState uint8

// Server states.
const (
	ServerStateInitial ServerState = iota
	ServerStateProtocolSettingsReceiving
	ServerStateIdle
	ServerStateCommandReceiving
	ServerStateErrored
)

var serverStateNames = [...]string{"initial", "protocol-settings-receiving", "idle", "command-receiving", "errored"}

// String returns Mercurial's name for the state.
func (s ServerState) String() string {
	if int(s) < len(serverStateNames) {
		return serverStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// pendingRequest is a command request being received.
type pendingRequest struct {
	payload       []byte
	data          []byte
	hasData       bool // a command-data frame arrived (Data is then non-nil)
	requestDone   bool
	expectingData bool
}

// ServerMachine is the server side of Mercurial's unified frame protocol as
// a sans-IO machine: it is handed frames received from a client, delivers
// the commands they request, and turns responses into frames to send.
//
// Inputs (OnFrame, FeedEOF and the Respond methods) change state at once and
// queue actions; the caller drains them with Next until WantMore or Error.
// Frame bytes of a Send action stay valid until the next method call.
type ServerMachine struct {
	cfg   ServerMachineConfig
	q     queue[Command]
	state ServerState

	incoming  [256]bool // client streams begun and not ended
	receiving map[uint16]*pendingRequest
	active    idSet // delivered, awaiting a response

	settings    []byte
	encodings   []string // what the client accepts
	nextStream  uint8
	deferred    []byte
	deferredIDs []uint16
	eof         bool
	in          byteInput
	scratch     []byte                  // CBOR encoding space, reused across responses
	em          framing.ResponseEmitter // reused by every response
	kept        []byte                  // the chunk arguments are copied into; see keep
}

// NewServerMachine returns a server reactor configured by cfg.
func NewServerMachine(cfg ServerMachineConfig) *ServerMachine {
	if cfg.MaxPendingRequests <= 0 {
		cfg.MaxPendingRequests = DefaultMaxPendingRequests
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxSettingsBytes <= 0 {
		cfg.MaxSettingsBytes = DefaultMaxSettingsBytes
	}
	if cfg.MaxFramePayload <= 0 {
		cfg.MaxFramePayload = frame.DefaultMaxPayload
	}
	if cfg.Encodings == nil {
		cfg.Encodings = DefaultServerEncodings
	}
	return &ServerMachine{
		cfg:        cfg,
		receiving:  make(map[uint16]*pendingRequest),
		encodings:  []string{EncodingIdentity},
		nextStream: 2,
	}
}

// State returns the reactor's state: ServerStateErrored once it has queued an
// Error, whatever path the error came by (a frame, the frame decoder, the
// end of input). The clean end (io.EOF, the machine rule) is no error: the
// state stays what it was.
func (r *ServerMachine) State() ServerState {
	if r.q.err != nil && r.q.err != io.EOF {
		return ServerStateErrored
	}
	return r.state
}

// Next returns the next action. Call it until it returns WantMore or Error.
func (r *ServerMachine) Next() (a action.Action[Command]) {
	if !r.q.pending() && (r.in.used || r.in.eofPending) {
		r.q.reclaim()
		pump(&r.q, &r.in, r.onFrame, r.onEOF)
	}
	r.q.next(&a)
	return a
}

// Feed hands the reactor bytes received from the client; Next decodes
// them into frames as it goes. The reactor references p until Next returns
// WantMore or Error. A frame the decoder rejects is an Error.
func (r *ServerMachine) Feed(p []byte) {
	r.q.reclaim()
	r.in.used = true
	r.in.dec.Feed(p)
}

func (r *ServerMachine) fail(err error) {
	r.state = ServerStateErrored
	r.q.fail(err)
}

// OnFrame hands the reactor a frame received from the client. The payload
// is copied where the reactor keeps it, so the caller may reuse it after
// OnFrame returns. A terminal reactor ignores frames.
func (r *ServerMachine) OnFrame(f frame.Frame) {
	r.q.reclaim()
	r.onFrame(f)
}

func (r *ServerMachine) onFrame(f frame.Frame) {
	if r.q.err != nil {
		return
	}
	if f.StreamID%2 == 0 {
		r.fail(protoErr("received frame with even numbered stream ID: %d", f.StreamID))
		return
	}
	if !r.incoming[f.StreamID] {
		if f.StreamFlags&frame.StreamFlagBegin == 0 {
			r.fail(protoErr("received frame on unknown inactive stream without beginning of stream flag set"))
			return
		}
		r.incoming[f.StreamID] = true
	}
	if f.StreamFlags&frame.StreamFlagEncoded != 0 {
		// Mercurial raises a ProgrammingError: it cannot decode client
		// streams, and neither can a client have negotiated an encoding.
		r.fail(protoErr("received encoded frame on stream %d: decoding client streams is not supported", f.StreamID))
		return
	}
	if f.StreamFlags&frame.StreamFlagEnd != 0 {
		r.incoming[f.StreamID] = false
	}
	switch r.state {
	case ServerStateInitial:
		r.onInitial(f)
	case ServerStateProtocolSettingsReceiving:
		r.onProtocolSettings(f)
	case ServerStateIdle:
		r.onIdle(f)
	case ServerStateCommandReceiving:
		r.onCommandReceiving(f)
	}
}

func (r *ServerMachine) onInitial(f frame.Frame) {
	switch f.Type {
	case frame.TypeSenderProtocolSettings:
		r.state = ServerStateProtocolSettingsReceiving
		r.onProtocolSettings(f)
	case frame.TypeCommandRequest:
		r.state = ServerStateIdle
		r.onIdle(f)
	default:
		r.fail(protoErr("expected sender protocol settings or command request frame; got %d", f.Type))
	}
}

func (r *ServerMachine) onProtocolSettings(f frame.Frame) {
	if f.Type != frame.TypeSenderProtocolSettings {
		r.fail(protoErr("expected sender protocol settings frame; got %d", f.Type))
		return
	}
	more := f.Flags&frame.FlagSenderProtocolSettingsContinuation != 0
	eos := f.Flags&frame.FlagSenderProtocolSettingsEOS != 0
	if more && eos {
		r.fail(protoErr("sender protocol settings frame cannot have both continuation and end of stream flags set"))
		return
	}
	if !more && !eos {
		r.fail(protoErr("sender protocol settings frame must have continuation or end of stream flag set"))
		return
	}
	if len(r.settings)+len(f.Payload) > r.cfg.MaxSettingsBytes {
		r.fail(limitErr(f.RequestID, "sender protocol settings bytes", int64(len(r.settings)+len(f.Payload)), int64(r.cfg.MaxSettingsBytes)))
		return
	}
	r.settings = append(r.settings, f.Payload...)
	values, err := decodeAvailable(r.settings)
	if err != nil {
		r.fail(&ProtocolError{Msg: "error decoding CBOR from sender protocol settings frame", Err: err})
		return
	}
	if more {
		return
	}
	r.settings = nil
	switch {
	case len(values) == 0:
		r.fail(protoErr("sender protocol settings frame did not contain CBOR data"))
		return
	case len(values) > 1:
		r.fail(protoErr("sender protocol settings frame contained multiple CBOR values"))
		return
	}
	if m, ok := values[0].(map[any]any); ok {
		if ce, ok := m[hgcbor.Bytes("contentencodings")]; ok {
			list, ok := ce.([]any)
			if !ok {
				r.fail(protoErr("sender protocol settings contentencodings is not an array"))
				return
			}
			r.encodings = r.encodings[:0:0]
			for _, v := range list {
				if b, ok := v.([]byte); ok {
					r.encodings = append(r.encodings, string(b))
				}
			}
		}
	} else {
		r.fail(protoErr("sender protocol settings frame did not contain a map"))
		return
	}
	r.state = ServerStateIdle
}

func (r *ServerMachine) validateRequestFlags(f frame.Frame) bool {
	isNew := f.Flags&frame.FlagCommandRequestNew != 0
	cont := f.Flags&frame.FlagCommandRequestContinuation != 0
	if isNew && cont {
		r.fail(protoErr("received command request frame with both new and continuation flags set"))
		return false
	}
	if !isNew && !cont {
		r.fail(protoErr("received command request frame with neither new nor continuation flags set"))
		return false
	}
	return true
}

func (r *ServerMachine) onIdle(f frame.Frame) {
	if f.Type != frame.TypeCommandRequest {
		r.fail(protoErr("expected command request frame; got %d", f.Type))
		return
	}
	if !r.validateRequestFlags(f) {
		return
	}
	if _, ok := r.receiving[f.RequestID]; ok {
		r.fail(protoErr("request with ID %d already received", f.RequestID))
		return
	}
	if r.active.has(f.RequestID) {
		r.fail(protoErr("request with ID %d is already active", f.RequestID))
		return
	}
	if f.Flags&frame.FlagCommandRequestNew == 0 {
		r.fail(protoErr("received command request frame without new flag set"))
		return
	}
	if f.RequestID%2 == 0 {
		// Clients number their requests 1, 3, 5, …; Mercurial does not check.
		r.fail(protoErr("received command request with even request ID: %d", f.RequestID))
		return
	}
	more := f.Flags&frame.FlagCommandRequestMoreFrames != 0
	expectingData := f.Flags&frame.FlagCommandRequestExpectData != 0
	if !more && !expectingData {
		// The whole request is in this frame: no buffering.
		r.runCommand(f.RequestID, f.Payload, nil)
		return
	}
	if len(r.receiving) >= r.cfg.MaxPendingRequests {
		r.fail(limitErr(f.RequestID, "partially received requests", int64(len(r.receiving)+1), int64(r.cfg.MaxPendingRequests)))
		return
	}
	if len(f.Payload) > r.cfg.MaxRequestBytes {
		r.fail(limitErr(f.RequestID, "request bytes", int64(len(f.Payload)), int64(r.cfg.MaxRequestBytes)))
		return
	}
	r.receiving[f.RequestID] = &pendingRequest{
		payload:       append([]byte(nil), f.Payload...),
		requestDone:   !more,
		expectingData: expectingData,
	}
	r.state = ServerStateCommandReceiving
}

func (r *ServerMachine) onCommandReceiving(f frame.Frame) {
	if f.Type == frame.TypeCommandRequest {
		if f.Flags&frame.FlagCommandRequestNew != 0 {
			r.onIdle(f)
			return
		}
		if !r.validateRequestFlags(f) {
			return
		}
	}
	if r.active.has(f.RequestID) {
		r.fail(protoErr("received frame for request that is still active: %d", f.RequestID))
		return
	}
	p, ok := r.receiving[f.RequestID]
	if !ok {
		r.fail(protoErr("received frame for request that is not receiving: %d", f.RequestID))
		return
	}
	switch f.Type {
	case frame.TypeCommandRequest:
		more := f.Flags&frame.FlagCommandRequestMoreFrames != 0
		expectingData := f.Flags&frame.FlagCommandRequestExpectData != 0
		if p.requestDone {
			r.fail(protoErr("received command request frame when request frames were supposedly done"))
			return
		}
		if expectingData != p.expectingData {
			r.fail(protoErr("mismatch between expect data flag and previous frame"))
			return
		}
		if !r.buffer(f.RequestID, p, &p.payload, f.Payload) {
			return
		}
		if !more {
			p.requestDone = true
		}
		if !more && !expectingData {
			r.finish(f.RequestID, p)
		}
	case frame.TypeCommandData:
		if !p.expectingData {
			r.fail(protoErr("received command data frame for request that is not expecting data: %d", f.RequestID))
			return
		}
		if !p.hasData {
			p.hasData = true
			p.data = []byte{}
		}
		if !r.buffer(f.RequestID, p, &p.data, f.Payload) {
			return
		}
		switch {
		case f.Flags&frame.FlagCommandDataContinuation != 0:
		case f.Flags&frame.FlagCommandDataEOS != 0:
			// Mercurial runs the command at end of data even when request
			// frames are still announced; so do we.
			r.finish(f.RequestID, p)
		default:
			r.fail(protoErr("command data frame without flags"))
		}
	default:
		r.fail(protoErr("received unexpected frame type: %d", f.Type))
	}
}

// buffer appends payload to *dst within the per-request byte limit.
func (r *ServerMachine) buffer(rid uint16, p *pendingRequest, dst *[]byte, payload []byte) bool {
	if len(p.payload)+len(p.data)+len(payload) > r.cfg.MaxRequestBytes {
		r.fail(limitErr(rid, "request bytes", int64(len(p.payload)+len(p.data)+len(payload)), int64(r.cfg.MaxRequestBytes)))
		return false
	}
	*dst = append(*dst, payload...)
	return true
}

func (r *ServerMachine) finish(rid uint16, p *pendingRequest) {
	delete(r.receiving, rid)
	var data []byte
	if p.hasData {
		data = p.data
	}
	r.runCommand(rid, p.payload, data)
}

// runCommand decodes a complete request and delivers it.
func (r *ServerMachine) runCommand(rid uint16, payload, data []byte) {
	if len(r.receiving) > 0 {
		r.state = ServerStateCommandReceiving
	} else {
		r.state = ServerStateIdle
	}
	// The Command is decoded straight into its queue slot.
	if err := r.decodeRequest(r.q.deliverSlot(), rid, payload, data); err != nil {
		r.q.dropLast()
		r.fail(err)
		return
	}
	r.active.add(rid)
}

// FeedEOF tells the reactor the client will send nothing more. Deferred
// output is released as one Send. Unlike Mercurial, which forgets them,
// command requests still partially received are reported as an Error
// wrapping ErrIncomplete (after the deferred output). Otherwise the reactor
// ends with a terminal Error with io.EOF once every request is answered.
func (r *ServerMachine) FeedEOF() {
	r.q.reclaim()
	if r.in.used {
		r.in.dec.FeedEOF()
		r.in.eofPending = true
		return
	}
	r.onEOF()
}

func (r *ServerMachine) onEOF() {
	if r.q.err != nil || r.eof {
		return
	}
	r.eof = true
	if len(r.deferred) > 0 {
		r.q.out = append(r.q.out, r.deferred...)
		r.q.sent()
		r.deferred = nil
	}
	for _, id := range r.deferredIDs {
		r.active.remove(id)
	}
	r.deferredIDs = nil
	if len(r.receiving) > 0 {
		ids := make([]uint16, 0, len(r.receiving))
		for id := range r.receiving {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		r.q.fail(&IncompleteError{RequestIDs: ids})
	}
	r.endIfDone()
}

// endIfDone ends the reactor cleanly (io.EOF) once the input ended and no
// request awaits its response.
func (r *ServerMachine) endIfDone() {
	if r.eof && r.active.n == 0 {
		r.q.fail(io.EOF)
	}
}
