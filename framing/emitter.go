package framing

import "github.com/wirereactor/wirereactor/frame"

// ResponseEmitter turns a command's response data, arriving in chunks of any
// size, into command-response frames (Mercurial's
// bufferingcommandresponseemitter): small chunks are coalesced into frames of
// up to the stream's MaxFramePayload, a chunk larger than that goes straight
// out split into full frames. Data passes through the stream's encoder and
// every frame is marked encoded, so the stream's settings must have been
// sent (OutputStream.AppendStreamSettings).
//
// The emitter copies what it buffers; Send and Flush do not retain their
// arguments. Its buffer, allocated once, holds at most MaxFramePayload bytes.
type ResponseEmitter struct {
	s         *OutputStream
	requestID uint16
	buf       []byte // coalesced data, at most s.split bytes
	encoded   []byte // encoder output for the chunk being sent
	unencoded bool   // see Unencoded
}

// NewResponseEmitter returns an emitter of response data for requestID on s.
func NewResponseEmitter(s *OutputStream, requestID uint16) *ResponseEmitter {
	return &ResponseEmitter{s: s, requestID: requestID}
}

// Reset makes e emit for requestID on s, dropping anything buffered and
// keeping its buffers' capacity.
func (e *ResponseEmitter) Reset(s *OutputStream, requestID uint16) {
	e.s, e.requestID, e.buf, e.unencoded = s, requestID, e.buf[:0], false
}

// Unencoded makes e send data as it is, in frames without the encoded
// stream flag, which need no stream settings: for a stream left without a
// content encoding. (Mercurial's emitter always encodes, and raises on a
// stream without settings.) Reset undoes it.
func (e *ResponseEmitter) Unencoded() { e.unencoded = true }

// Buffered returns how many bytes of data wait for Flush or more data.
func (e *ResponseEmitter) Buffered() int { return len(e.buf) }

// Send takes the next chunk of response data and appends the frames it
// completes, if any:
//   - a chunk (after encoding) larger than MaxFramePayload flushes what is
//     buffered, then goes out in frames of MaxFramePayload bytes and a
//     shorter last one;
//   - a chunk that fits beside what is buffered, short of a full frame, is
//     buffered;
//   - otherwise the buffer goes out as one frame and the chunk is buffered.
//
// All frames are command-response, continuation, encoded: making one before
// the stream's settings were sent fails with ErrNoStreamSettings, as in
// Mercurial.
func (e *ResponseEmitter) Send(dst, data []byte) ([]byte, error) {
	if e.s.enc != nil && !e.unencoded {
		if _, identity := e.s.enc.(IdentityEncoder); !identity {
			e.encoded = e.s.enc.Encode(e.encoded[:0], data)
			data = e.encoded
		}
	}
	if len(data) == 0 {
		return dst, nil
	}
	max := e.s.split
	var err error
	if len(data) > max {
		if dst, err = e.Flush(dst); err != nil {
			return dst, err
		}
		return e.s.appendSplit(dst, e.requestID, frame.TypeCommandResponse,
			frame.FlagCommandResponseContinuation, frame.FlagCommandResponseContinuation, data, !e.unencoded)
	}
	if len(e.buf)+len(data) < max {
		e.buf = append(e.buf, data...)
		return dst, nil
	}
	if dst, err = e.Flush(dst); err != nil {
		return dst, err
	}
	e.buf = append(e.buf, data...)
	return dst, nil
}

// Flush appends what is buffered as one command-response frame
// (continuation, encoded), or nothing when the buffer is empty. It does not
// flush the stream's encoder: OutputStream.AppendResponseEOS does that.
func (e *ResponseEmitter) Flush(dst []byte) ([]byte, error) {
	if len(e.buf) == 0 {
		return dst, nil
	}
	dst, err := e.s.AppendFrame(dst, e.requestID, frame.TypeCommandResponse,
		frame.FlagCommandResponseContinuation, e.buf, !e.unencoded)
	if err != nil {
		return dst, err
	}
	e.buf = e.buf[:0]
	return dst, nil
}
