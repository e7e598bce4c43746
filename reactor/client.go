package reactor

import (
	"fmt"
	"io"
	"reflect"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// Default limits of ClientMachineConfig (and DefaultMaxSettingsBytes, shared
// with ServerMachineConfig).
const (
	DefaultMaxDecoderBuffer   = 64 << 20
	DefaultMaxResponseBytes   = 256 << 20
	DefaultMaxDecodingStreams = 4
)

// ClientMachineConfig configures a ClientMachine. The zero value is Mercurial's
// default client: sends are buffered until FlushCommands, the transport
// sends once, and no content encodings are advertised.
type ClientMachineConfig struct {
	// MultipleSends says the transport can send more than once (a
	// persistent connection); otherwise the first send is the only one
	// (Mercurial's hasmultiplesend).
	MultipleSends bool
	// Immediate sends each command as it is called instead of buffering
	// until FlushCommands (Mercurial's buffersends=False).
	Immediate bool
	// ContentEncodings are advertised to the server in a
	// sender-protocol-settings frame ahead of the first request; nil
	// advertises none (the server then uses identity).
	ContentEncodings []string
	// MaxFramePayload is the largest payload put in a request frame
	// (frame.DefaultMaxPayload when zero).
	MaxFramePayload int
	// MaxSettingsBytes bounds a stream-settings payload
	// (DefaultMaxSettingsBytes when zero).
	MaxSettingsBytes int
	// MaxDecoderBuffer bounds the compressed bytes a stream decoder keeps
	// (DefaultMaxDecoderBuffer when zero).
	MaxDecoderBuffer int
	// MaxResponseBytes bounds the bytes decoded from zlib or zstd-8mb
	// streams for one response (one request id): 256 MiB
	// (DefaultMaxResponseBytes) when zero, no bound when negative.
	// A command response's decoded data is delivered in pieces of at
	// most 128 KiB as it is produced; a frame of another type (text
	// output, progress, an error response: Mercurial's server encodes
	// none of them) is decoded whole, up to 1 MiB, the largest payload
	// the frame decoder takes. So the reactor's own memory does not
	// depend on this limit; it bounds what an application that gathers
	// a response before decoding its CBOR holds. Exceeding it is an
	// Error wrapping action.ErrLimit (an *action.LimitError), raised
	// before the excess is delivered.
	MaxResponseBytes int
	// MaxDecodingStreams bounds the streams open at once with a zlib or
	// zstd-8mb decoder (DefaultMaxDecodingStreams when zero): each holds
	// its decoder's window, up to 8 MiB for zstd-8mb. Mercurial's server
	// sends every response on one stream.
	MaxDecodingStreams int
}

// Request is a command to issue.
type Request struct {
	Name     string
	Args     map[hgcbor.Bytes]any // CBOR-encodable values; nil or empty sends no args
	Data     []byte               // command data; nil sends none (empty non-nil sends an empty data frame)
	Redirect any                  // content redirect request; nil sends none
}

// ResponseKind says what a Response carries.
type ResponseKind uint8

// Response kinds.
const (
	// ResponseKindData is a chunk of a command's response stream (a
	// command-response frame, decoded).
	ResponseKindData ResponseKind = iota
	// ResponseKindError is an error-response frame: the request has ended.
	ResponseKindError
	// ResponseKindTextOutput is a text-output frame (CBOR in Data). Mercurial's
	// client raises on these.
	ResponseKindTextOutput
	// ResponseKindProgress is a progress frame (CBOR in Data). Mercurial's
	// client raises on these.
	ResponseKindProgress
)

var responseKindNames = [...]string{"data", "error", "text-output", "progress"}

// String returns the kind's name.
func (k ResponseKind) String() string {
	if int(k) < len(responseKindNames) {
		return responseKindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Response is what the client reactor delivers for a frame from the server.
//
// Data may alias the payload of the frame handed to OnFrame (or bytes
// handed to Feed): it is valid until Next returns WantMore, like every
// input the machine references. Data decoded from a zlib or zstd-8mb
// stream aliases the reactor's decoding buffer instead and is valid only
// until the next call to Next: a command response frame's decoded output
// is delivered as it is produced, in pieces of at most 128 KiB, each but
// the last with More set and EOS unset; the last piece carries the frame's
// flags. (Mercurial delivers a frame's output whole; the pieces differ only
// for frames that decode to more than 128 KiB.) Other frames are decoded
// whole, to at most 1 MiB like an unencoded payload, and delivered in one
// piece.
type Response struct {
	RequestID uint16
	Kind      ResponseKind
	More      bool // ResponseKindData: the continuation flag (more data follows)
	EOS       bool // ResponseKindData: the end of this request's response
	Data      []byte
	Error     *ErrorResponse // ResponseKindError: the error-response frame's content
}

// ErrorResponse is the content of an error-response frame: the request
// failed. (A pointer in Response, which keeps Response small: it is
// copied on every delivery.)
type ErrorResponse struct {
	Type    string // "server", "command", … (a CBOR byte string on the wire)
	Message any    // the decoded "message" value (a list of atoms)
}

// ClientMachine is the client side of Mercurial's unified frame protocol as
// a sans-IO machine: it turns command calls into frames to send, and
// frames from the server into Response values.
//
// CallCommand and FlushCommands queue Send actions; OnFrame and FeedEOF
// queue Deliver actions; the caller drains them with Next until WantMore
// or Error. Send bytes stay valid until the next method call.
type ClientMachine struct {
	slot            Response // a delivery waiting outside the queue
	slotFull        bool
	inPump          bool // frames come from fed bytes: deliveries are queued
	cfg             ClientMachineConfig
	cur             decoding      // the encoded frame whose output is being delivered
	backlog         []frame.Frame // frames handed to OnFrame while cur was busy
	eofAfter        bool          // FeedEOF came while cur or backlog was busy
	chunk           []byte        // decoded output, decodeChunk+1 bytes once needed
	decoded         map[uint16]*decodedCount
	q               queue[Response]
	canIssue        bool
	canSend         bool
	settingsSent    bool
	nextRequestID   uint16
	out             *framing.OutputStream
	pending         []Request
	pendingIDs      []uint16
	active          idSet
	incoming        [256]*inputStream
	settingsBuffers map[uint8][]byte
	in              byteInput
}

type inputStream struct {
	dec decoder
}

// decoding is an encoded command-response frame whose decoded output is
// being delivered, piece by piece, as Next is called.
type decoding struct {
	active    bool
	dec       decoder
	streamID  uint8
	requestID uint16
	more, eos bool // the frame's flags, for its last piece
}

// decodedCount tallies one response's decoded and compressed bytes.
type decodedCount struct{ decoded, compressed int }

// ClientState says whether a ClientMachine can still take input.
type ClientState uint8

// Client states.
const (
	// ClientStateRunning: the reactor takes frames and commands.
	ClientStateRunning ClientState = iota
	// ClientStateErrored: an Error was queued; the reactor is terminal.
	ClientStateErrored
)

// String returns "running" or "errored".
func (s ClientState) String() string {
	if s == ClientStateErrored {
		return "errored"
	}
	return "running"
}

// State returns ClientStateErrored once the reactor has queued an Error —
// whichever way the input came, frames through OnFrame or bytes through
// Feed — and ClientStateRunning before. Bytes handed to Feed are decoded by
// Next, so an error in them shows once Next has returned it. The clean end
// (io.EOF, the machine rule) is no error.
func (c *ClientMachine) State() ClientState {
	if c.q.err != nil && c.q.err != io.EOF {
		return ClientStateErrored
	}
	return ClientStateRunning
}

// NewClientMachine returns a client reactor configured by cfg.
func NewClientMachine(cfg ClientMachineConfig) *ClientMachine {
	if cfg.MaxFramePayload <= 0 {
		cfg.MaxFramePayload = frame.DefaultMaxPayload
	}
	if cfg.MaxSettingsBytes <= 0 {
		cfg.MaxSettingsBytes = DefaultMaxSettingsBytes
	}
	if cfg.MaxDecoderBuffer <= 0 {
		cfg.MaxDecoderBuffer = DefaultMaxDecoderBuffer
	}
	if cfg.MaxDecodingStreams <= 0 {
		cfg.MaxDecodingStreams = DefaultMaxDecodingStreams
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &ClientMachine{
		cfg:             cfg,
		canIssue:        true,
		canSend:         true,
		nextRequestID:   1,
		settingsBuffers: make(map[uint8][]byte),
		out:             framing.NewOutputStream(1, streamConfig(cfg.MaxFramePayload)),
	}
}

// Next returns the next action. Call it until it returns WantMore or Error.
func (c *ClientMachine) Next() (a action.Action[Response]) {
	if c.slotFull {
		// takeSlot, written out: Next stays inlinable.
		c.slotFull = false
		a.Kind = action.KindDeliver
		a.Value.RequestID, a.Value.Kind, a.Value.Data = c.slot.RequestID, c.slot.Kind, c.slot.Data
		a.Value.More, a.Value.EOS, a.Value.Error = c.slot.More, c.slot.EOS, c.slot.Error
		return a
	}
	return c.next()
}

// takeSlot moves the slot's Response into a Deliver action. Field by field:
// OnFrame wrote the slot field by field just before, and copying it whole
// reads it back with wider loads than those stores, which stall (about 2 of
// the 16 ns of a delivered frame).
func (c *ClientMachine) takeSlot(a *action.Action[Response]) {
	c.slotFull = false
	a.Kind = action.KindDeliver
	a.Value.RequestID, a.Value.Kind, a.Value.Data = c.slot.RequestID, c.slot.Kind, c.slot.Data
	a.Value.More, a.Value.EOS, a.Value.Error = c.slot.More, c.slot.EOS, c.slot.Error
}

// next is Next without the single slot: small enough, Next is inlined.
func (c *ClientMachine) next() (a action.Action[Response]) {
	if !c.q.pending() {
		c.q.reclaim()
		c.advance()
		if c.slotFull {
			c.takeSlot(&a)
			return a
		}
	}
	c.q.next(&a)
	return a
}

// waiting reports whether an action waits to be taken.
func (c *ClientMachine) waiting() bool { return c.slotFull || c.q.pending() }

// deliver queues r. With nothing else waiting it goes to a single slot
// that Next hands out without the queue (the common case: one frame in,
// one Response out); frames decoded from fed bytes always use the queue,
// since pump stops only at a queued action.
func (c *ClientMachine) deliver(r Response) {
	if c.slotFull || c.inPump || c.q.pending() {
		c.q.deliver(r)
		return
	}
	c.slot, c.slotFull = r, true
}

// advance takes the next step of the input until an action is queued:
// the next piece of a frame being decoded, then frames handed to OnFrame
// meanwhile, then bytes from Feed.
func (c *ClientMachine) advance() {
	for !c.waiting() {
		switch {
		case c.q.err != nil:
			c.cur, c.backlog, c.eofAfter = decoding{}, nil, false
			return
		case c.cur.active:
			c.decodeNext()
		case len(c.backlog) > 0:
			f := c.backlog[0]
			c.backlog[0] = frame.Frame{}
			if c.backlog = c.backlog[1:]; len(c.backlog) == 0 {
				c.backlog = nil
			}
			c.onFrame(f)
		case c.eofAfter:
			c.eofAfter = false
			c.onEOF()
		case c.in.used || c.in.eofPending:
			c.inPump = true
			pump(&c.q, &c.in, c.onFrame, c.onEOF)
			c.inPump = false
			return
		default:
			return
		}
	}
}

// busy reports whether input handed over earlier still waits: a frame's
// decoded output, or frames queued behind it.
func (c *ClientMachine) busy() bool { return c.cur.active || len(c.backlog) > 0 || c.eofAfter }

// Feed hands the reactor bytes received from the server; Next decodes them
// into frames as it goes. The reactor references p until Next returns
// WantMore or Error, and a delivered Response's Data may alias p (or the
// decoder's buffer) until the next call. A frame the decoder rejects is an
// Error.
func (c *ClientMachine) Feed(p []byte) {
	c.q.reclaim()
	c.in.used = true
	c.in.dec.Feed(p)
}

// CallCommand issues a command request and returns its request id (odd,
// increasing by 2). With buffered sends (the default) the request waits
// for FlushCommands; with Immediate it is queued as a Send at once.
//
// It returns ErrCannotIssue once a single-send client has sent, and
// ErrCannotSend when an immediate send is no longer possible. An immediate
// request is encoded before CallCommand returns; a buffered one is kept —
// its Args and Data still referenced — until FlushCommands encodes it.
func (c *ClientMachine) CallCommand(req Request) (uint16, error) {
	c.q.reclaim()
	if c.q.err != nil {
		return 0, fmt.Errorf("reactor: call after an error: %w", c.q.err)
	}
	if !c.canIssue {
		return 0, fmt.Errorf("reactor: %w", ErrCannotIssue)
	}
	rid := c.nextRequestID
	c.nextRequestID += 2
	if !c.cfg.Immediate {
		c.pending = append(c.pending, req)
		c.pendingIDs = append(c.pendingIDs, rid)
		return rid, nil
	}
	if !c.canSend {
		return 0, fmt.Errorf("reactor: %w", ErrCannotSend)
	}
	if !c.cfg.MultipleSends {
		c.canSend, c.canIssue = false, false
	}
	var err error
	if c.q.out, err = c.appendRequest(c.q.out, rid, req); err != nil {
		return 0, err
	}
	c.q.sent()
	return rid, nil
}

// FlushCommands queues a Send of every buffered request. With nothing
// buffered it does nothing. On a single-send client no command can be
// issued afterwards.
func (c *ClientMachine) FlushCommands() error {
	c.q.reclaim()
	if c.q.err != nil {
		return fmt.Errorf("reactor: flush after an error: %w", c.q.err)
	}
	if len(c.pending) == 0 {
		return nil
	}
	if !c.canSend {
		return fmt.Errorf("reactor: %w", ErrCannotSend)
	}
	if !c.cfg.MultipleSends {
		c.canIssue, c.canSend = false, false
	}
	for i, req := range c.pending {
		var err error
		if c.q.out, err = c.appendRequest(c.q.out, c.pendingIDs[i], req); err != nil {
			c.pending, c.pendingIDs = c.pending[i+1:], c.pendingIDs[i+1:]
			c.q.sent()
			return err
		}
	}
	c.pending, c.pendingIDs = c.pending[:0], c.pendingIDs[:0]
	c.q.sent()
	return nil
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.String, reflect.Array:
		return rv.Len() == 0
	}
	return false
}

// appendRequest appends the frames of one command request, as Mercurial's
// createcommandframes builds them, preceded by the protocol settings on the
// first request when encodings are advertised.
func (c *ClientMachine) appendRequest(dst []byte, rid uint16, req Request) ([]byte, error) {
	m := map[hgcbor.Bytes]any{"name": []byte(req.Name)}
	if len(req.Args) > 0 {
		m["args"] = req.Args
	}
	if !isEmpty(req.Redirect) {
		m["redirect"] = req.Redirect
	}
	payload, err := hgcbor.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("reactor: encode request %q: %w", req.Name, err)
	}
	c.active.add(rid)
	if !c.settingsSent && len(c.cfg.ContentEncodings) > 0 {
		c.settingsSent = true
		encs := make([]any, len(c.cfg.ContentEncodings))
		for i, e := range c.cfg.ContentEncodings {
			encs[i] = []byte(e)
		}
		settings := mustMarshal(map[hgcbor.Bytes]any{"contentencodings": encs})
		if dst, err = c.out.AppendFrame(dst, rid, frame.TypeSenderProtocolSettings, frame.FlagSenderProtocolSettingsEOS, settings, false); err != nil {
			return dst, err
		}
	}
	max := c.cfg.MaxFramePayload
	for off := 0; ; {
		fl := frame.FlagCommandRequestContinuation
		if off == 0 {
			fl = frame.FlagCommandRequestNew
		}
		if req.Data != nil {
			fl |= frame.FlagCommandRequestExpectData
		}
		n := min(max, len(payload)-off)
		chunk := payload[off : off+n]
		off += n
		if n == max && off < len(payload) {
			fl |= frame.FlagCommandRequestMoreFrames
		}
		if dst, err = c.out.AppendFrame(dst, rid, frame.TypeCommandRequest, fl, chunk, false); err != nil {
			return dst, err
		}
		if fl&frame.FlagCommandRequestMoreFrames == 0 {
			break
		}
	}
	if req.Data != nil {
		// Mercurial reads command data in DEFAULT_MAX_FRAME_SIZE pieces; a
		// full piece is a continuation, so data of an exact multiple ends
		// with an empty eos frame.
		for off := 0; ; {
			n := min(frame.DefaultMaxPayload, len(req.Data)-off)
			chunk := req.Data[off : off+n]
			off += n
			fl := frame.FlagCommandDataEOS
			if n == frame.DefaultMaxPayload {
				fl = frame.FlagCommandDataContinuation
			}
			if dst, err = c.out.AppendFrame(dst, rid, frame.TypeCommandData, fl, chunk, false); err != nil {
				return dst, err
			}
			if fl == frame.FlagCommandDataEOS {
				break
			}
		}
	}
	return dst, nil
}

func (c *ClientMachine) fail(err error) { c.q.fail(err) }

// OnFrame hands the reactor a frame received from the server. The payload
// may be referenced (by a delivered Response) until Next returns WantMore.
// A terminal reactor ignores frames. A frame handed over while an earlier
// frame's decoded output is still being delivered is taken once that
// output is out.
func (c *ClientMachine) OnFrame(f frame.Frame) {
	// The common case first: a plain command-response frame on a stream
	// already begun, for an active request, with nothing else waiting.
	// It is what onFrame does for such a frame, without the detours.
	if f.Type == frame.TypeCommandResponse && f.StreamFlags == 0 && !c.slotFull && c.q.handed == 0 &&
		c.q.err == nil && c.q.head == len(c.q.items) && c.incoming[f.StreamID] != nil && !c.busy() &&
		c.active.has(f.RequestID) && f.Flags&^(frame.FlagCommandResponseContinuation|frame.FlagCommandResponseEOS) == 0 {
		eos := f.Flags&frame.FlagCommandResponseEOS != 0
		if eos {
			c.active.remove(f.RequestID)
			delete(c.decoded, f.RequestID)
		}
		// Field by field: a whole-struct store costs a bulk write barrier.
		r := &c.slot
		r.RequestID, r.Kind, r.Data = f.RequestID, ResponseKindData, f.Payload
		r.More, r.EOS = f.Flags&frame.FlagCommandResponseContinuation != 0, eos
		if r.Error != nil {
			r.Error = nil
		}
		c.slotFull = true
		return
	}
	c.q.reclaim()
	if c.busy() {
		c.backlog = append(c.backlog, f)
		return
	}
	c.onFrame(f)
}

func (c *ClientMachine) onFrame(f frame.Frame) {
	if c.q.err != nil {
		return
	}
	if f.StreamID%2 == 1 {
		c.fail(protoErr("received frame with odd numbered stream ID: %d", f.StreamID))
		return
	}
	s := c.incoming[f.StreamID]
	if s == nil {
		if f.StreamFlags&frame.StreamFlagBegin == 0 {
			c.fail(protoErr("received frame on unknown stream without beginning of stream flag set"))
			return
		}
		s = &inputStream{}
		c.incoming[f.StreamID] = s
	}
	payload := f.Payload
	dec := s.dec
	streaming := false
	if dec != nil && f.StreamFlags&frame.StreamFlagEncoded != 0 {
		if err := dec.push(payload); err != nil {
			c.decodeFailed(dec, f.StreamID, err)
			return
		}
		c.count(f.RequestID).compressed += len(payload)
		// A command response's output is delivered as it decodes;
		// anything else is decoded whole here.
		if streaming = f.Type == frame.TypeCommandResponse; !streaming {
			var ok bool
			if payload, ok = c.decodeWhole(dec, f.StreamID, f.RequestID); !ok {
				return
			}
			if !c.active.has(f.RequestID) {
				delete(c.decoded, f.RequestID) // stream settings, say: no response to tally
			}
		}
	}
	if f.StreamFlags&frame.StreamFlagEnd != 0 {
		c.incoming[f.StreamID] = nil
	}
	if f.Type == frame.TypeStreamSettings {
		c.onStreamSettings(f, s)
		return
	}
	if !c.active.has(f.RequestID) {
		c.fail(protoErr("received frame for inactive request ID: %d", f.RequestID))
		return
	}
	switch f.Type {
	case frame.TypeCommandResponse:
		eos := f.Flags&frame.FlagCommandResponseEOS != 0
		more := f.Flags&frame.FlagCommandResponseContinuation != 0
		if eos {
			c.active.remove(f.RequestID)
		}
		if streaming {
			c.cur = decoding{active: true, dec: dec, streamID: f.StreamID, requestID: f.RequestID, more: more, eos: eos}
			c.decodeNext()
			return
		}
		if eos {
			delete(c.decoded, f.RequestID)
		}
		c.deliver(Response{RequestID: f.RequestID, Kind: ResponseKindData, Data: payload, More: more, EOS: eos})
	case frame.TypeErrorResponse:
		c.active.remove(f.RequestID)
		delete(c.decoded, f.RequestID)
		v, err := hgcbor.Unmarshal(payload)
		if err == nil {
			err = checkNoText(v)
		}
		if err != nil {
			c.fail(&ProtocolError{Msg: "error decoding CBOR from error response frame", Err: err})
			return
		}
		m, _ := v.(map[any]any)
		typ, ok := m[hgcbor.Bytes("type")].([]byte)
		if !ok {
			c.fail(protoErr("error response frame has no type"))
			return
		}
		c.deliver(Response{RequestID: f.RequestID, Kind: ResponseKindError,
			Error: &ErrorResponse{Type: string(typ), Message: m[hgcbor.Bytes("message")]}})
	case frame.TypeTextOutput:
		c.deliver(Response{RequestID: f.RequestID, Kind: ResponseKindTextOutput, Data: payload})
	case frame.TypeProgress:
		c.deliver(Response{RequestID: f.RequestID, Kind: ResponseKindProgress, Data: payload})
	default:
		c.fail(protoErr("unhandled frame type: %d", f.Type))
	}
}

// count returns request rid's tally of decoded bytes.
func (c *ClientMachine) count(rid uint16) *decodedCount {
	n := c.decoded[rid]
	if n == nil {
		if c.decoded == nil {
			c.decoded = make(map[uint16]*decodedCount)
		}
		n = &decodedCount{}
		c.decoded[rid] = n
	}
	return n
}

func (c *ClientMachine) decodeFailed(dec decoder, streamID uint8, err error) {
	c.cur = decoding{}
	c.fail(&ProtocolError{Msg: fmt.Sprintf("error decoding %s stream %d", dec.name(), streamID), Err: err})
}

// decodeStep reads the next piece of dec's output for request rid into
// c.chunk and counts it against the limit.
func (c *ClientMachine) decodeStep(dec decoder, streamID uint8, rid uint16) (out []byte, more, ok bool) {
	if c.chunk == nil {
		c.chunk = make([]byte, decodeChunk+1)
	}
	n, more, err := dec.read(c.chunk)
	if err != nil {
		c.decodeFailed(dec, streamID, err)
		return nil, false, false
	}
	cnt := c.count(rid)
	if max := c.cfg.MaxResponseBytes; max > 0 && n > max-cnt.decoded {
		c.cur = decoding{}
		c.fail(limitErr(rid, fmt.Sprintf("decoded response bytes (%s on stream %d, %d decoded before from %d compressed bytes)",
			dec.name(), streamID, cnt.decoded, cnt.compressed), int64(cnt.decoded)+int64(n), int64(max)))
		return nil, false, false
	}
	cnt.decoded += n
	return c.chunk[:n], more, true
}

// decodeNext delivers the next piece of the current frame's output.
func (c *ClientMachine) decodeNext() {
	d := &c.cur
	out, more, ok := c.decodeStep(d.dec, d.streamID, d.requestID)
	if !ok {
		return
	}
	r := Response{RequestID: d.requestID, Kind: ResponseKindData, Data: out, More: true}
	if !more {
		r.More, r.EOS = d.more, d.eos
		if d.eos {
			delete(c.decoded, d.requestID)
		}
		c.cur = decoding{}
	}
	c.deliver(r)
}

// decodeWhole returns all of dec's output for an encoded frame other than
// a command response (Mercurial's server never encodes one), within the
// response limit and within the largest payload the frame decoder takes.
func (c *ClientMachine) decodeWhole(dec decoder, streamID uint8, rid uint16) ([]byte, bool) {
	var all []byte
	for {
		out, more, ok := c.decodeStep(dec, streamID, rid)
		if !ok {
			return nil, false
		}
		if len(all)+len(out) > framing.DefaultDecoderMaxPayload {
			c.fail(limitErr(rid, fmt.Sprintf("decoded bytes in one frame other than a command response (%s stream %d)", dec.name(), streamID),
				int64(len(all)+len(out)), framing.DefaultDecoderMaxPayload))
			return nil, false
		}
		all = append(all, out...)
		if !more {
			return all, true
		}
	}
}

func (c *ClientMachine) onStreamSettings(f frame.Frame, s *inputStream) {
	more := f.Flags&frame.FlagStreamSettingsContinuation != 0
	eos := f.Flags&frame.FlagStreamSettingsEOS != 0
	if more && eos {
		c.fail(protoErr("stream encoding settings frame cannot have both continuation and end of stream flags set"))
		return
	}
	if !more && !eos {
		c.fail(protoErr("stream encoding settings frame must have continuation or end of stream flag set"))
		return
	}
	buf := c.settingsBuffers[f.StreamID]
	if len(buf)+len(f.Payload) > c.cfg.MaxSettingsBytes {
		c.fail(limitErr(f.RequestID, "stream settings bytes", int64(len(buf)+len(f.Payload)), int64(c.cfg.MaxSettingsBytes)))
		return
	}
	buf = append(buf, f.Payload...)
	c.settingsBuffers[f.StreamID] = buf
	values, err := decodeAvailable(buf)
	if err != nil {
		c.fail(&ProtocolError{Msg: "error decoding CBOR from stream encoding settings frame", Err: err})
		return
	}
	if more {
		return
	}
	delete(c.settingsBuffers, f.StreamID)
	if len(values) == 0 {
		c.fail(protoErr("stream encoding settings frame did not contain CBOR data"))
		return
	}
	if f.StreamFlags&frame.StreamFlagEnd != 0 {
		// Mercurial removed the stream before setting its decoder and
		// reports the KeyError, whose text is the stream id.
		c.fail(protoErr("error setting stream decoder: %d", f.StreamID))
		return
	}
	name, ok := values[0].([]byte)
	if !ok {
		c.fail(protoErr("error setting stream decoder: stream encoding name is not a byte string"))
		return
	}
	dec, err := newDecoder(string(name), len(values) > 1, c.cfg.MaxDecoderBuffer)
	if err != nil {
		c.fail(&ProtocolError{Msg: "error setting stream decoder", Err: err})
		return
	}
	if dec != nil && s.dec == nil {
		n := 0
		for _, o := range c.incoming {
			if o != nil && o.dec != nil {
				n++
			}
		}
		if n >= c.cfg.MaxDecodingStreams {
			c.fail(limitErr(f.RequestID, "streams with a content decoder", int64(n+1), int64(c.cfg.MaxDecodingStreams)))
			return
		}
	}
	s.dec = dec
}

// FeedEOF tells the reactor the server will send nothing more. Requests
// still awaiting a response are reported as an Error wrapping
// ErrIncomplete; otherwise the reactor ends with a terminal Error with
// io.EOF.
func (c *ClientMachine) FeedEOF() {
	c.q.reclaim()
	if c.in.used {
		c.in.dec.FeedEOF()
		c.in.eofPending = true
		return
	}
	if c.busy() {
		c.eofAfter = true
		return
	}
	c.onEOF()
}

func (c *ClientMachine) onEOF() {
	if c.q.err != nil {
		return
	}
	if c.active.n == 0 {
		c.q.fail(io.EOF) // a clean end
		return
	}
	c.fail(&IncompleteError{RequestIDs: c.active.ids()})
}
