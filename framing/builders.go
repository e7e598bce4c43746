package framing

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"

	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// CommandRequest is a request to run a command, as Mercurial's
// createcommandframes takes it.
type CommandRequest struct {
	// Name is the command name, sent as a CBOR byte string.
	Name string
	// Args are the command's arguments, sent under b'args' when there is at
	// least one. Values are anything hgcbor encodes.
	Args map[hgcbor.Bytes]any
	// Redirect is sent under b'redirect' unless Python would call it false
	// (nil, empty, zero), as Mercurial tests it. It holds Mercurial's content
	// redirect targets, e.g. {b'targets': [...], b'hashes': [...]}.
	Redirect any
	// Data, when not nil, is read to EOF and sent as command-data frames
	// after the request; the request frames then carry have-data.
	Data io.Reader
	// DataLater marks the request frames have-data without sending any
	// data: the caller follows them with AppendCommandData, frame by frame,
	// which bounds the memory a large upload takes. Ignored when Data is set.
	DataLater bool
}

// AppendCommandRequest appends the frames of req (Mercurial's
// createcommandframes): the CBOR map {b'name': …, b'args': …,
// b'redirect': …} split into command-request frames of at most
// MaxFramePayload bytes — new on the first, continuation on the rest, more on
// every frame but the last — then, when req.Data is set, command-data
// frames: continuation on full frames, eos on the last, which is empty when
// the data fill whole frames (or there are none). Data is read in chunks of
// frame.DefaultMaxPayload bytes, or MaxFramePayload when that is smaller
// (Mercurial uses 32768 whatever its maxframesize), straight into dst: all
// of it, so large uploads use DataLater and AppendCommandData instead.
//
// Errors: a value hgcbor cannot encode, and an error reading req.Data
// (wrapped). On error dst keeps its length (bytes past it may have been
// written) and the stream its state.
func (s *OutputStream) AppendCommandRequest(dst []byte, requestID uint16, req CommandRequest) ([]byte, error) {
	n0, st := len(dst), s.save()
	keys := 1
	if len(req.Args) > 0 {
		keys++
	}
	redirect := !pythonFalse(req.Redirect)
	if redirect {
		keys++
	}
	// Keys in Mercurial's order (bytewise): args, name, redirect.
	p := hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorMap, uint64(keys))
	var err error
	if len(req.Args) > 0 {
		p = appendCBORBytes(p, "args")
		if p, err = hgcbor.Append(p, req.Args); err != nil {
			return s.fail(dst, n0, st, fmt.Errorf("framing: encoding command arguments: %w", err))
		}
	}
	p = appendCBORBytes(appendCBORBytes(p, "name"), req.Name)
	if redirect {
		p = appendCBORBytes(p, "redirect")
		if p, err = hgcbor.Append(p, req.Redirect); err != nil {
			return s.fail(dst, n0, st, fmt.Errorf("framing: encoding command redirect: %w", err))
		}
	}
	s.scratch = p

	var haveData frame.Flags
	if req.Data != nil || req.DataLater {
		haveData = frame.FlagCommandRequestExpectData
	}
	flags := frame.FlagCommandRequestNew | haveData
	for {
		n := min(len(p), s.split)
		chunk := p[:n]
		p = p[n:]
		if len(p) > 0 {
			flags |= frame.FlagCommandRequestMoreFrames
		}
		if dst, err = s.AppendFrame(dst, requestID, frame.TypeCommandRequest, flags, chunk, false); err != nil {
			return s.fail(dst, n0, st, err)
		}
		if len(p) == 0 {
			break
		}
		flags = frame.FlagCommandRequestContinuation | haveData
	}
	if req.Data == nil {
		return dst, nil
	}
	if dst, err = s.appendCommandData(dst, requestID, req.Data); err != nil {
		return s.fail(dst, n0, st, err)
	}
	return dst, nil
}

// appendCommandData reads r to EOF into command-data frames appended to dst.
func (s *OutputStream) appendCommandData(dst []byte, requestID uint16, r io.Reader) ([]byte, error) {
	for {
		var done bool
		var err error
		if dst, done, err = s.AppendCommandData(dst, requestID, r); err != nil || done {
			return dst, err
		}
	}
}

// AppendCommandData reads the next frame's worth of command data from r —
// frame.DefaultMaxPayload bytes, or MaxFramePayload when that is smaller —
// straight into dst as one command-data frame, and reports whether that was
// the last: continuation when the chunk is full, eos (done) when r reached
// EOF first, an empty eos frame if it had nothing left. It is the step
// AppendCommandRequest repeats for CommandRequest.Data; call it yourself,
// after a request with DataLater, to send data a frame at a time.
//
// A read error other than EOF is returned wrapped, with dst at its original
// length (bytes past it may have been written) and the stream unchanged.
func (s *OutputStream) AppendCommandData(dst []byte, requestID uint16, r io.Reader) (_ []byte, done bool, _ error) {
	chunk := min(frame.DefaultMaxPayload, s.split)
	start := len(dst)
	dst = slices.Grow(dst, frame.HeaderSize+chunk)[:start+frame.HeaderSize+chunk]
	n, err := io.ReadFull(r, dst[start+frame.HeaderSize:])
	flags := frame.FlagCommandDataContinuation
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		flags, done = frame.FlagCommandDataEOS, true
	default:
		return dst[:start], false, fmt.Errorf("framing: reading command data: %w", err)
	}
	// The payload is in place; write the header in front of it.
	var sf frame.StreamFlags
	if !s.active {
		sf, s.active = frame.StreamFlagBegin, true
	}
	frame.AppendHeader(dst[:start], frame.Header{Length: n, RequestID: requestID, StreamID: s.id,
		StreamFlags: sf, Type: frame.TypeCommandData, Flags: flags})
	return dst[:start+frame.HeaderSize+n], done, nil
}

// statusOK is the CBOR of {b'status': b'ok'}.
var statusOK = []byte("\xa1\x46status\x42ok")

// AppendResponseOK appends the frame that opens a successful command
// response (Mercurial's createcommandresponseokframe): command-response,
// continuation, payload {b'status': b'ok'}. Once the stream's settings were
// sent the payload goes through the encoder and the frame is marked encoded;
// if the encoder holds all of it back, nothing is appended.
func (s *OutputStream) AppendResponseOK(dst []byte, requestID uint16) ([]byte, error) {
	payload, encoded := statusOK, false
	if s.settingsSent {
		s.encoded = s.Encode(s.encoded[:0], statusOK)
		payload, encoded = s.encoded, true
		if len(payload) == 0 {
			return dst, nil
		}
	}
	return s.AppendFrame(dst, requestID, frame.TypeCommandResponse, frame.FlagCommandResponseContinuation, payload, encoded)
}

// AppendResponseEOS appends the frames that end a command response
// (Mercurial's createcommandresponseeosframes): whatever the encoder still
// holds (Flush), split into command-response frames marked encoded, the last
// with eos and the others with continuation; without encoder output, one
// empty eos frame, not marked encoded. Callers using a ResponseEmitter flush
// it first.
func (s *OutputStream) AppendResponseEOS(dst []byte, requestID uint16) ([]byte, error) {
	n0, st := len(dst), s.save()
	s.encoded = s.Flush(s.encoded[:0])
	dst, err := s.appendSplit(dst, requestID, frame.TypeCommandResponse,
		frame.FlagCommandResponseContinuation, frame.FlagCommandResponseEOS, s.encoded, len(s.encoded) > 0)
	if err != nil {
		return s.fail(dst, n0, st, err)
	}
	return dst, nil
}

// AlternateLocation tells a client to fetch a command's response elsewhere
// (Mercurial's wireprototypes.alternatelocationresponse, for content
// redirects). URL and MediaType are sent as byte strings; each optional
// field is sent only when not nil, as any value hgcbor encodes.
type AlternateLocation struct {
	URL              string
	MediaType        string
	Size             any // the response's size in bytes, an integer
	FullHashes       any
	FullHashSeed     any
	ServerDERCerts   any
	ServerCADERCerts any
}

// AppendAlternateLocation appends the frame redirecting a command's
// response (Mercurial's createalternatelocationresponseframe):
// command-response, continuation, payload {b'status': b'redirect',
// b'location': {…}}, encoded once the stream's settings were sent.
func (s *OutputStream) AppendAlternateLocation(dst []byte, requestID uint16, loc AlternateLocation) ([]byte, error) {
	optional := []struct {
		key string
		v   any
	}{
		// Mercurial adds these keys as pycompat.bytestr, a subclass of
		// bytes, and cborutil sorts map keys by type name first: they come
		// after url and mediatype, sorted among themselves.
		{"fullhashes", loc.FullHashes}, {"fullhashseed", loc.FullHashSeed},
		{"servercadercerts", loc.ServerCADERCerts}, {"serverdercerts", loc.ServerDERCerts}, {"size", loc.Size},
	}
	n := 2
	for _, f := range optional {
		if f.v != nil {
			n++
		}
	}
	// {b'location': {...}, b'status': b'redirect'}
	p := hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorMap, 2)
	p = hgcbor.AppendHead(appendCBORBytes(p, "location"), hgcbor.MajorMap, uint64(n))
	p = appendCBORBytes(appendCBORBytes(p, "mediatype"), loc.MediaType)
	p = appendCBORBytes(appendCBORBytes(p, "url"), loc.URL)
	for _, f := range optional {
		if f.v == nil {
			continue
		}
		var err error
		if p, err = hgcbor.Append(appendCBORBytes(p, f.key), f.v); err != nil {
			return dst, fmt.Errorf("framing: encoding alternate location %s: %w", f.key, err)
		}
	}
	p = appendCBORBytes(appendCBORBytes(p, "status"), "redirect")
	s.scratch = p
	encoded := false
	if s.settingsSent {
		s.encoded = s.Encode(s.encoded[:0], p)
		p, encoded = s.encoded, true
	}
	return s.AppendFrame(dst, requestID, frame.TypeCommandResponse, frame.FlagCommandResponseContinuation, p, encoded)
}

// AppendCommandError appends the frame reporting that a command failed
// (Mercurial's createcommanderrorresponse): command-response, eos, payload
// {b'status': b'error', b'error': {b'message': message, b'args': args}},
// b'args' only when args is not empty. message is a format string with %s
// for each of args, sent as byte strings; args are anything hgcbor encodes,
// usually hgcbor.Bytes. Never encoded, as in Mercurial.
func (s *OutputStream) AppendCommandError(dst []byte, requestID uint16, message string, args []any) ([]byte, error) {
	inner := 1
	if len(args) > 0 {
		inner++
	}
	// Keys in Mercurial's order: error (args, message), status.
	p := hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorMap, 2)
	p = appendCBORBytes(p, "error")
	p = hgcbor.AppendHead(p, hgcbor.MajorMap, uint64(inner))
	if len(args) > 0 {
		var err error
		if p, err = hgcbor.Append(appendCBORBytes(p, "args"), args); err != nil {
			return dst, fmt.Errorf("framing: encoding command error arguments: %w", err)
		}
	}
	p = appendCBORBytes(appendCBORBytes(p, "message"), message)
	p = appendCBORBytes(appendCBORBytes(p, "status"), "error")
	s.scratch = p
	return s.AppendFrame(dst, requestID, frame.TypeCommandResponse, frame.FlagCommandResponseEOS, p, false)
}

// Error types Mercurial sends in error-response frames.
const (
	ErrorTypeServer   = "server"   // the server failed running a command
	ErrorTypeProtocol = "protocol" // the peer broke the protocol
)

// maxErrorMessage is the longest message Mercurial's createerrorframe
// accepts (it asserts len(msg) <= DEFAULT_MAX_FRAME_SIZE).
const maxErrorMessage = frame.DefaultMaxPayload

// AppendErrorResponse appends an error-response frame (Mercurial's
// createerrorframe) with payload {b'type': errType, b'message': [{b'msg':
// msg}]}. errType is usually ErrorTypeServer or ErrorTypeProtocol. A msg
// longer than 32768 bytes is an error holding an *action.LimitError, as
// Mercurial refuses it.
func (s *OutputStream) AppendErrorResponse(dst []byte, requestID uint16, msg, errType string) ([]byte, error) {
	if len(msg) > maxErrorMessage {
		return dst, tooLarge(frame.TypeErrorResponse, "message", len(msg), maxErrorMessage)
	}
	// Keys in Mercurial's order: message, type.
	p := hgcbor.AppendHead(s.scratch[:0], hgcbor.MajorMap, 2)
	p = appendCBORBytes(p, "message")
	p = hgcbor.AppendHead(p, hgcbor.MajorArray, 1)
	p = hgcbor.AppendHead(p, hgcbor.MajorMap, 1)
	p = appendCBORBytes(appendCBORBytes(p, "msg"), msg)
	p = appendCBORBytes(appendCBORBytes(p, "type"), errType)
	s.scratch = p
	return s.AppendFrame(dst, requestID, frame.TypeErrorResponse, 0, p, false)
}

// pythonFalse reports whether Python's truth test fails for the value v
// stands for: None, False, zero, and empty strings, lists and dicts.
func pythonFalse(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.String:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return rv.IsZero()
	}
	return false
}

// appendCBORBytes appends s as a CBOR byte string.
func appendCBORBytes(dst []byte, s string) []byte {
	dst = hgcbor.AppendHead(dst, hgcbor.MajorBytes, uint64(len(s)))
	return append(dst, s...)
}
