package reactor

// Responses: the server reactor's output streams and the Respond methods,
// which encode a command's answer into frames the way Mercurial does.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// NewOutputStream returns a new stream to the client, with the next even
// stream id. Its content encoding is the first of the server's encodings
// the client advertised (identity when the client sent no protocol
// settings); when there is none, responses go out unencoded.
func (r *ServerMachine) NewOutputStream() *OutputStream {
	s := newOutputStream(r.nextStream, r.cfg.MaxFramePayload)
	r.nextStream += 2
	for _, name := range r.cfg.Encodings {
		if slices.Contains(r.encodings, name) {
			if enc := newEncoder(name); enc != nil {
				s.SetEncoder(enc)
				break
			}
		}
	}
	return s
}

// emitter returns the reactor's response emitter, reset for request rid on
// s: it encodes and marks frames encoded when the stream has an encoder.
func (r *ServerMachine) emitter(s *OutputStream, rid uint16) *framing.ResponseEmitter {
	r.em.Reset(s, rid)
	if s.Encoder() == nil {
		r.em.Unencoded()
	}
	return &r.em
}

// output appends out-of-band built frames to the right buffer and ends the
// request once its output is handed over.
func (r *ServerMachine) output(rid uint16) {
	if r.cfg.DeferOutput && !r.eof {
		r.deferredIDs = append(r.deferredIDs, rid)
		return
	}
	r.active.remove(rid)
	r.q.sent()
	r.endIfDone()
}

func (r *ServerMachine) checkActive(s *OutputStream, rid uint16) error {
	if r.q.err != nil {
		return fmt.Errorf("reactor: respond to request %d after an error: %w", rid, r.q.err)
	}
	if s == nil {
		return errors.New("reactor: nil output stream")
	}
	if !r.active.has(rid) || slices.Contains(r.deferredIDs, rid) {
		return fmt.Errorf("reactor: respond to request %d: %w", rid, ErrNotActive)
	}
	return nil
}

// outBuf returns the buffer new output frames are appended to.
func (r *ServerMachine) outBuf() *[]byte {
	if r.cfg.DeferOutput && !r.eof {
		return &r.deferred
	}
	return &r.q.out
}

// EncodedResponse is a response object already CBOR encoded: its bytes go
// out as they are (through the stream's content encoding).
type EncodedResponse []byte

// IndefiniteBytes is a response object sent as one indefinite-length CBOR
// byte string made of these chunks.
type IndefiniteBytes [][]byte

// CommandError is a response object (and an error) that ends a response
// with a command error, as when a Mercurial command raises
// WireprotoCommandError while producing its output.
type CommandError struct {
	Message string
	Args    []any // formatting arguments, byte strings; nil for none
}

// Error returns the message (unformatted).
func (e *CommandError) Error() string { return e.Message }

// RespondObjects sends the response to request rid on stream s: objs are
// CBOR encoded and coalesced into frames the way Mercurial does. Special
// objects: EncodedResponse, IndefiniteBytes, *framing.AlternateLocation
// (or framing.AlternateLocation). A
// *CommandError or any other error among objs ends the response there with
// a command error or a server error, as an exception raised by a Mercurial
// command's output generator does.
//
// It returns ErrNotActive (and sends nothing) when no delivered command
// awaits a response with that id — Mercurial emits the frames and then
// raises — and the reactor's error once it is terminal. objs are not
// retained.
func (r *ServerMachine) RespondObjects(s *OutputStream, rid uint16, objs ...any) error {
	return r.respond(s, rid, func(dst []byte) ([]byte, error) {
		return r.appendResponse(dst, s, rid, objs), nil
	})
}

// respond checks that request rid awaits a response, appends the frames
// build makes to the output, and ends the request. When build fails,
// nothing is sent and the request stays active.
func (r *ServerMachine) respond(s *OutputStream, rid uint16, build func(dst []byte) ([]byte, error)) error {
	r.q.reclaim()
	if err := r.checkActive(s, rid); err != nil {
		return err
	}
	dst := r.outBuf()
	out, err := build(*dst)
	if err != nil {
		return fmt.Errorf("reactor: respond to request %d: %w", rid, err)
	}
	*dst = out
	r.output(rid)
	return nil
}

func (r *ServerMachine) appendResponse(dst []byte, s *OutputStream, rid uint16, objs []any) []byte {
	out, err := r.appendObjects(dst, s, rid, objs)
	if err != nil {
		// Only a frame over the stream's hard limit fails; the frames
		// before it stay, and the response ends with a server error.
		return appendErrorFrame(out, s, rid, err.Error(), "server")
	}
	return out
}

// appendObjects appends the frames of a response made of objs.
func (r *ServerMachine) appendObjects(dst []byte, s *OutputStream, rid uint16, objs []any) (_ []byte, err error) {
	em := r.emitter(s, rid)
	emitted, alternate := false, false
	for _, o := range objs {
		switch o := o.(type) {
		case map[hgcbor.Bytes]any, []any, []byte, hgcbor.Bytes, EncodedResponse:
			// Common objects, none an error or an alternate location: a
			// concrete-type test spares them the interface test below.
		case *CommandError:
			return appendCommandError(dst, s, rid, o.Message, o.Args)
		case error:
			return appendErrorFrame(dst, s, rid, o.Error(), "server"), nil
		case *framing.AlternateLocation, framing.AlternateLocation:
			if emitted {
				return appendErrorFrame(dst, s, rid, "alternatelocationresponse seen after initial output object", "server"), nil
			}
			if dst, err = s.AppendStreamSettings(dst, rid); err != nil {
				return dst, err
			}
			loc, ok := o.(framing.AlternateLocation)
			if !ok {
				loc = *o.(*framing.AlternateLocation)
			}
			// Framed on its own, even when the encoder held it all back,
			// as Mercurial's createalternatelocationresponseframe does.
			out, err := s.AppendAlternateLocation(dst, rid, loc)
			switch {
			case errors.Is(err, action.ErrLimit):
				return dst, err
			case err != nil:
				return appendErrorFrame(dst, s, rid, err.Error(), "server"), nil
			}
			dst = out
			alternate, emitted = true, true
			continue
		}
		if alternate {
			return appendErrorFrame(dst, s, rid, "object follows alternatelocationresponse", "server"), nil
		}
		if !emitted {
			if dst, err = s.AppendStreamSettings(dst, rid); err != nil {
				return dst, err
			}
			// Mercurial sends the status in a frame of its own.
			if dst, err = em.Send(dst, okPayload); err != nil {
				return dst, err
			}
			if dst, err = em.Flush(dst); err != nil {
				return dst, err
			}
			emitted = true
		}
		switch o := o.(type) {
		case EncodedResponse:
			dst, err = em.Send(dst, o)
		case IndefiniteBytes:
			dst, err = em.Send(dst, []byte{0x5f})
			for _, c := range o {
				var h [9]byte
				if err == nil {
					dst, err = em.Send(dst, hgcbor.AppendHead(h[:0], 2, uint64(len(c))))
				}
				if err == nil {
					dst, err = em.Send(dst, c)
				}
			}
			if err == nil {
				dst, err = em.Send(dst, []byte{0xff})
			}
		default:
			var scratch []byte
			scratch, err = hgcbor.Append(r.scratch[:0], o)
			r.scratch = scratch[:0] // keep what it grew to for the next object
			if err != nil {
				return appendErrorFrame(dst, s, rid, err.Error(), "server"), nil
			}
			if passThrough(s) && em.Buffered()+len(scratch) < s.MaxFramePayload() {
				// Each chunk would be buffered as it is: buffer them at once.
				dst, err = em.Send(dst, scratch)
			} else {
				dst, err = sendCBOR(dst, em, scratch)
			}
		}
		if err != nil {
			return dst, err
		}
	}
	if dst, err = em.Flush(dst); err != nil || !emitted {
		return dst, err
	}
	return s.AppendResponseEOS(dst, rid)
}

var okPayload = mustMarshal(map[hgcbor.Bytes]any{"status": hgcbor.Bytes("ok")})

// appendCommandError appends a command error; it fails, appending nothing,
// when the error does not fit in a frame.
func appendCommandError(dst []byte, s *OutputStream, rid uint16, msg string, args []any) ([]byte, error) {
	e := map[hgcbor.Bytes]any{"message": []byte(msg)}
	if len(args) > 0 {
		e["args"] = args
	}
	payload, err := hgcbor.Marshal(map[hgcbor.Bytes]any{"status": hgcbor.Bytes("error"), "error": e})
	if err != nil {
		return appendErrorFrame(dst, s, rid, err.Error(), "server"), nil
	}
	return s.AppendFrame(dst, rid, frame.TypeCommandResponse, frame.FlagCommandResponseEOS, payload, false)
}

// errorFrameOverhead bounds what an error-response payload adds to its
// message: the map, its keys and the error type.
const errorFrameOverhead = 64

// appendErrorFrame appends an error-response frame. Unlike Mercurial, which
// sends a frame whose length its own peer misreads, it cuts a message too
// long for one frame to fit.
func appendErrorFrame(dst []byte, s *OutputStream, rid uint16, msg, typ string) []byte {
	if max := s.MaxFramePayload() - errorFrameOverhead; len(msg) > max {
		msg = msg[:max]
	}
	payload := mustMarshal(map[hgcbor.Bytes]any{
		"type":    []byte(typ),
		"message": []any{map[hgcbor.Bytes]any{"msg": []byte(msg)}},
	})
	out, err := s.AppendFrame(dst, rid, frame.TypeErrorResponse, 0, payload, false)
	if err != nil {
		panic("reactor: error frame does not fit: " + err.Error()) // the message was cut to fit
	}
	return out
}

// RespondServerError ends request rid with an error-response frame of type
// "server" carrying msg.
func (r *ServerMachine) RespondServerError(s *OutputStream, rid uint16, msg string) error {
	return r.respond(s, rid, func(dst []byte) ([]byte, error) {
		return appendErrorFrame(dst, s, rid, msg, "server"), nil
	})
}

// RespondCommandError ends request rid with a command error: a
// command-response frame {status: error, error: {message, args}}. args are
// formatting arguments (byte strings); nil for none.
func (r *ServerMachine) RespondCommandError(s *OutputStream, rid uint16, msg string, args []any) error {
	return r.respond(s, rid, func(dst []byte) ([]byte, error) {
		return appendCommandError(dst, s, rid, msg, args)
	})
}

// SendTextOutput sends a text-output frame on s for request rid, as
// framing's AppendTextOutput builds it. It does not end the request. It
// fails, sending nothing, when an atom has a non-ASCII format string or
// label (a *framing.TextOutputError, as Mercurial refuses them) or the atoms
// do not fit in one frame (an error holding an *action.LimitError).
func (r *ServerMachine) SendTextOutput(s *OutputStream, rid uint16, atoms []framing.TextAtom) error {
	r.q.reclaim()
	if r.q.err != nil {
		return fmt.Errorf("reactor: text output after an error: %w", r.q.err)
	}
	if s == nil {
		return errors.New("reactor: nil output stream")
	}
	dst := r.outBuf()
	out, err := s.AppendTextOutput(*dst, rid, atoms)
	if err != nil {
		return fmt.Errorf("reactor: text output: %w", err)
	}
	*dst = out
	if !(r.cfg.DeferOutput && !r.eof) {
		r.q.sent()
	}
	return nil
}
