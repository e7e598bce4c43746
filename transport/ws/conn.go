package ws

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport/internal/trywrite"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes (RFC 6455 §7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
	CloseTryAgainLater   = 1013
	CloseBadGateway      = 1014
)

// DefaultMaxFrameSize is the default limit on a frame's payload, in both
// directions: larger writes are split, larger incoming frames are refused.
const DefaultMaxFrameSize = 1 << 20

// DefaultCloseTimeout bounds how long Close waits for the peer to answer the
// close handshake.
const DefaultCloseTimeout = time.Second

// ErrProtocol is matched by every *ProtocolError: the peer broke RFC 6455 or
// this package's rules.
var ErrProtocol = errors.New("protocol error")

// ProtocolError is a violation of RFC 6455 (or of this package's rules, such
// as binary frames only) by the peer. The connection sends a close frame with
// Code and fails every later Read.
type ProtocolError struct {
	Msg  string // what the peer did wrong, without the package prefix
	Err  error  // the cause (ErrTextFrame, an *action.LimitError), or nil
	Code uint16 // the close status sent to the peer
}

// Error returns "ws: " and the message, then the cause.
func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "ws: " + e.Msg + ": " + e.Err.Error()
	}
	return "ws: " + e.Msg
}

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Is reports whether target is ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// errPeerClosed is returned by Write once the peer closed the connection.
var errPeerClosed = fmt.Errorf("ws: peer closed the connection: %w", io.EOF)

// ErrTextFrame is the cause in the *ProtocolError of a text frame: the stream
// carries binary frames only.
var ErrTextFrame = errors.New("only binary frames are allowed")

// CloseError reports the peer's close frame when its status was not a
// normal closure.
type CloseError struct {
	Code   uint16
	Reason string
}

// Error gives the peer's close status and reason.
func (e *CloseError) Error() string {
	return fmt.Sprintf("ws: peer closed with status %d %q", e.Code, e.Reason)
}

// Conn is a WebSocket connection used as a byte stream: Write sends binary
// frames (split at MaxFrameSize); Read returns the payload bytes of binary
// frames in order, regardless of frame and message boundaries. Pings are
// answered by Read; a text frame is a *ProtocolError. It implements
// net.Conn, is safe for one concurrent reader and one concurrent writer (and
// Close from anywhere), and never lets a blocked Write delay Close.
type Conn struct {
	nc           net.Conn
	client       bool // client frames are masked
	maxFrame     int
	closeTimeout time.Duration
	protocol     string

	// Read side, guarded by rmu.
	rmu        sync.Mutex
	rbuf       []byte // buffered bytes from nc: rbuf[rpos:rend]
	rpos, rend int
	remaining  int64 // payload bytes left in the current data frame
	rmask      [4]byte
	rmasked    bool
	fragmented bool // inside a data message whose FIN has not been seen
	rerr       error

	// Write side, guarded by wmu.
	wmu   sync.Mutex
	whdr  [14]byte
	wbuf  []byte // client: masked copy of the payload
	wtail []byte // the unsent rest of a frame cut short by a deadline or by TryWrite
	rng   *mrand.ChaCha8
	tw    *trywrite.Writer // non-blocking attempts on nc; nil unless nc is a plain socket

	mu          sync.Mutex // guards the fields below
	pendingPong []byte     // a pong the reader could not send (a Write was in progress)
	pongQueued  bool
	closeSent   bool
	closing     bool // Close was called
	closed      bool
	peerClosed  chan struct{} // closed when the peer's close frame arrives
	peerDone    bool
}

func newConn(nc net.Conn, client bool, leftover []byte, opts connOptions) *Conn {
	c := &Conn{
		nc:           nc,
		client:       client,
		maxFrame:     opts.maxFrame,
		closeTimeout: opts.closeTimeout,
		protocol:     opts.protocol,
		rbuf:         make([]byte, max(32<<10, len(leftover))),
		peerClosed:   make(chan struct{}),
		tw:           trywrite.New(nc),
	}
	c.rend = copy(c.rbuf, leftover)
	if client {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		c.rng = mrand.NewChaCha8(seed)
	}
	return c
}

type connOptions struct {
	maxFrame     int
	closeTimeout time.Duration
	protocol     string
}

// Subprotocol returns the negotiated subprotocol ("binary"), or "" if the
// peer negotiated none.
func (c *Conn) Subprotocol() string { return c.protocol }

// fill ensures n bytes are buffered; on error the buffered bytes are kept,
// so a timed-out read can resume.
func (c *Conn) fill(n int) error {
	if c.rend-c.rpos >= n {
		return nil
	}
	if c.rpos > 0 {
		c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
	}
	for c.rend < n {
		m, err := c.nc.Read(c.rbuf[c.rend:])
		c.rend += m
		if c.rend >= n {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				if c.rend > 0 {
					return io.ErrUnexpectedEOF
				}
				return io.EOF
			}
			return err
		}
	}
	return nil
}

// Read implements net.Conn: it returns payload bytes of binary frames.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return 0, c.rerr
	}
	for c.remaining == 0 {
		if err := c.readHeader(); err != nil {
			if !isTimeout(err) {
				c.rerr = err // the stream is unusable from here
			}
			return 0, err
		}
	}
	want := int(min(int64(len(p)), c.remaining))
	var n int
	var err error
	if c.rend > c.rpos {
		n = copy(p[:want], c.rbuf[c.rpos:c.rend])
		c.rpos += n
	} else {
		// Large reads go straight into p, skipping a copy.
		n, err = c.nc.Read(p[:want])
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if c.rmasked && n > 0 {
		off := maskBytes(c.rmask, 0, p[:n])
		c.rmask = rotateMask(c.rmask, off)
	}
	c.remaining -= int64(n)
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readHeader reads one frame header, handling control frames completely.
// On return with nil error and remaining > 0, a data frame's payload is next.
func (c *Conn) readHeader() error {
	if err := c.fill(2); err != nil {
		return err
	}
	b0, b1 := c.rbuf[c.rpos], c.rbuf[c.rpos+1]
	hlen := 2
	switch b1 & 0x7f {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	masked := b1&0x80 != 0
	if masked {
		hlen += 4
	}
	if err := c.fill(hlen); err != nil {
		return err
	}
	h := c.rbuf[c.rpos : c.rpos+hlen]
	var length uint64
	switch b1 & 0x7f {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:])
	default:
		length = uint64(b1 & 0x7f)
	}
	var mask [4]byte
	if masked {
		copy(mask[:], h[hlen-4:])
	}

	fin := b0&0x80 != 0
	op := b0 & 0x0f
	switch {
	case b0&0x70 != 0:
		return c.protocolError(CloseProtocolError, "reserved bits set (no extension was negotiated)", nil)
	case masked == c.client:
		if c.client {
			return c.protocolError(CloseProtocolError, "masked frame from the server", nil)
		}
		return c.protocolError(CloseProtocolError, "unmasked frame from the client", nil)
	case length>>63 != 0:
		return c.protocolError(CloseProtocolError, "64-bit frame length with its most significant bit set", nil)
	case length > uint64(c.maxFrame):
		return c.protocolError(CloseMessageTooBig, "frame too big",
			&action.LimitError{What: "frame payload bytes", Size: int64(min(length, math.MaxInt64)), Limit: int64(c.maxFrame)})
	}
	if op >= opClose {
		if op > opPong { // 0xB to 0xF are reserved (RFC 6455 §5.2)
			return c.protocolError(CloseProtocolError, fmt.Sprintf("unknown opcode %#x", op), nil)
		}
		if !fin || length > 125 {
			return c.protocolError(CloseProtocolError, "fragmented or oversized control frame", nil)
		}
		// Consume header and payload together, so a timeout in between
		// leaves the frame whole for the next Read.
		if err := c.fill(hlen + int(length)); err != nil {
			return err
		}
		payload := c.rbuf[c.rpos+hlen : c.rpos+hlen+int(length)]
		c.rpos += hlen + int(length)
		if masked {
			maskBytes(mask, 0, payload)
		}
		return c.control(op, payload)
	}
	c.rpos += hlen
	switch op {
	case opText:
		return c.protocolError(CloseUnsupportedData, "text frame received", ErrTextFrame)
	case opBinary:
		if c.fragmented {
			return c.protocolError(CloseProtocolError, "new data frame inside a fragmented message", nil)
		}
	case opContinuation:
		if !c.fragmented {
			return c.protocolError(CloseProtocolError, "continuation frame outside a fragmented message", nil)
		}
	default:
		return c.protocolError(CloseProtocolError, fmt.Sprintf("unknown opcode %#x", op), nil)
	}
	c.fragmented = !fin
	c.remaining = int64(length)
	c.rmask, c.rmasked = mask, masked
	return nil
}

// control handles a ping, pong or close frame (payload is unmasked and
// valid only during the call).
func (c *Conn) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		c.sendControl(opPong, payload)
		return nil
	case opPong:
		return nil
	case opClose:
		code := uint16(1005) // no status received
		reason := ""
		if len(payload) >= 2 {
			code = binary.BigEndian.Uint16(payload)
			reason = string(payload[2:])
			switch {
			case !validCloseCode(code):
				return c.protocolError(CloseProtocolError, fmt.Sprintf("close frame with invalid status %d", code), nil)
			case !utf8.ValidString(reason):
				return c.protocolError(CloseInvalidPayload, "close frame with a reason that is not UTF-8", nil)
			}
		} else if len(payload) == 1 {
			return c.protocolError(CloseProtocolError, "close frame with a 1-byte payload", nil)
		}
		c.mu.Lock()
		if !c.peerDone {
			c.peerDone = true
			close(c.peerClosed)
		}
		c.mu.Unlock()
		// Echo the status (RFC 6455 §5.5.1; coder/websocket's Close
		// reports a different one as an error), completing the close
		// handshake.
		c.sendControl(opClose, payload[:min(len(payload), 2)])
		if code == CloseNormal || code == 1005 || code == 1001 {
			return io.EOF
		}
		return &CloseError{Code: code, Reason: reason}
	}
	return nil
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4: 1005, 1006 and 1015 are never sent; 1016–2999 are
// reserved; 3000–4999 belong to applications).
func validCloseCode(code uint16) bool {
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

func (c *Conn) protocolError(code uint16, msg string, cause error) error {
	c.sendControl(opClose, binary.BigEndian.AppendUint16(nil, code))
	return &ProtocolError{Msg: msg, Err: cause, Code: code}
}

// sendControl writes a control frame from the reader without ever waiting
// for a Write in progress: if one is, the frame is queued and the writer
// sends it after its current frame. Only one pong is kept (RFC 6455 allows
// answering only the latest ping). A close frame is sent at most once.
func (c *Conn) sendControl(op byte, payload []byte) {
	c.mu.Lock()
	if c.closeSent || c.closed {
		c.mu.Unlock()
		return
	}
	if op == opClose {
		c.closeSent = true
	}
	c.mu.Unlock()
	if c.wmu.TryLock() {
		_ = c.writeFrame(op, true, payload)
		c.flushPendingLocked()
		c.wmu.Unlock()
		return
	}
	c.mu.Lock()
	c.pendingPong = append(append(c.pendingPong[:0], op), payload...)
	c.pongQueued = true
	c.mu.Unlock()
}

// flushPendingLocked sends a queued control frame; wmu is held.
func (c *Conn) flushPendingLocked() {
	c.mu.Lock()
	if !c.pongQueued {
		c.mu.Unlock()
		return
	}
	frame := append([]byte(nil), c.pendingPong...)
	c.pongQueued = false
	c.mu.Unlock()
	_ = c.writeFrame(frame[0], true, frame[1:])
}

// Write implements net.Conn: p is sent as one binary message of one or more
// frames of at most MaxFrameSize bytes. A Write of no bytes sends no frame;
// it finishes sending a frame that TryWrite (or a deadline) cut short and a
// queued pong.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableErr(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		if err := c.flushTail(); err != nil {
			return 0, err
		}
		c.flushPendingLocked()
		return 0, nil
	}
	written := 0
	op := byte(opBinary)
	for {
		chunk := p[written:]
		if len(chunk) > c.maxFrame {
			chunk = chunk[:c.maxFrame]
		}
		fin := written+len(chunk) == len(p)
		if err := c.writeFrame(op, fin, chunk); err != nil {
			return written, err
		}
		written += len(chunk)
		op = opContinuation
		c.flushPendingLocked()
		if fin {
			return written, nil
		}
	}
}

// writableErr says why nothing can be written any more, or nil.
func (c *Conn) writableErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.peerDone:
		return errPeerClosed
	case c.closeSent || c.closed:
		return net.ErrClosed
	}
	return nil
}

// TryWrite implements transport.TryWriter. When no Write is in progress,
// the stream is a plain socket and p fits one frame, p goes out as one
// binary frame in one non-blocking write(2): it returns len(p), with
// pending true if the kernel took only part of the frame (the rest is kept
// and sent first by the next Write, which may be a Write of no bytes) or a
// pong waits. It returns 0 when it would have to wait before the frame's
// first byte leaves, and on any error (the next Write reports it).
func (c *Conn) TryWrite(p []byte) (n int, pending bool) {
	if c.tw == nil || len(p) == 0 || len(p) > c.maxFrame || !c.wmu.TryLock() {
		return 0, false
	}
	n = c.tryFrame(p)
	tail := len(c.wtail) > 0
	c.wmu.Unlock()
	c.mu.Lock()
	pong := c.pongQueued // queued by the reader while we held wmu
	c.mu.Unlock()
	return n, tail || pong
}

// tryFrame is TryWrite with wmu held.
func (c *Conn) tryFrame(p []byte) int {
	if c.writableErr() != nil {
		return 0
	}
	if len(c.wtail) > 0 {
		k := c.tw.Write(c.wtail)
		c.wtail = c.wtail[:copy(c.wtail, c.wtail[k:])]
		if len(c.wtail) > 0 {
			return 0
		}
	}
	h := c.header(opBinary, true, len(p))
	var a, b []byte
	if !c.client {
		a, b = h, p
	} else {
		a = c.maskedFrame(h, p)
	}
	k := c.tw.Write2(a, b)
	if k == 0 {
		return 0
	}
	if rest := len(a) + len(b) - k; rest > 0 {
		// The frame is committed: keep its tail for the next Write.
		c.wtail = append(c.wtail[:0], a[min(k, len(a)):]...)
		c.wtail = append(c.wtail, b[max(0, k-len(a)):]...)
	}
	return len(p)
}

// header returns the header of a frame with n payload bytes in c.whdr,
// with a fresh mask (the last 4 bytes) for a client; wmu is held.
func (c *Conn) header(op byte, fin bool, n int) []byte {
	h := c.whdr[:2]
	h[0] = op
	if fin {
		h[0] |= 0x80
	}
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] = 127
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	if c.client {
		h[1] |= 0x80
		var mask [4]byte
		binary.LittleEndian.PutUint32(mask[:], uint32(c.rng.Uint64()))
		h = append(h, mask[:]...)
	}
	return h
}

// maskedFrame returns a client's frame in c.wbuf: header h (ending with
// the mask), then payload masked (the caller's payload is never modified).
func (c *Conn) maskedFrame(h, payload []byte) []byte {
	need := len(h) + len(payload)
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, need)
	}
	buf := c.wbuf[:need]
	copy(buf, h)
	copy(buf[len(h):], payload)
	maskBytes([4]byte(h[len(h)-4:]), 0, buf[len(h):])
	return buf
}

// writeFrame writes one frame; wmu is held.
func (c *Conn) writeFrame(op byte, fin bool, payload []byte) error {
	if err := c.flushTail(); err != nil {
		return err
	}
	h := c.header(op, fin, len(payload))
	if !c.client {
		return c.writeBufs(h, payload)
	}
	return c.writeBufs(c.maskedFrame(h, payload), nil)
}

// writeBufs writes a then b. If the write fails part way (a write deadline
// passed), the rest of the frame is kept and sent before anything else, so
// the peer never sees a truncated frame followed by a new header. wmu is
// held.
func (c *Conn) writeBufs(a, b []byte) error {
	var n int64
	var err error
	if len(b) == 0 {
		var m int
		m, err = c.nc.Write(a)
		n = int64(m)
	} else {
		bufs := net.Buffers{a, b}
		n, err = bufs.WriteTo(c.nc)
	}
	if err != nil && n > 0 {
		c.wtail = append(c.wtail[:0], a[min(int(n), len(a)):]...)
		c.wtail = append(c.wtail, b[max(0, int(n)-len(a)):]...)
		return nil // the frame is committed; the tail goes out next
	}
	return err
}

// flushTail sends the rest of a frame interrupted by a write deadline.
func (c *Conn) flushTail() error {
	if len(c.wtail) == 0 {
		return nil
	}
	n, err := c.nc.Write(c.wtail)
	c.wtail = c.wtail[:copy(c.wtail, c.wtail[n:])]
	return err
}

// Close sends a close frame (unless a Write is blocked: then the socket is
// simply closed), waits up to the close timeout for the peer's answer, and
// closes the socket. Received-but-unread data is discarded.
func (c *Conn) Close() error { return c.CloseWithStatus(CloseNormal, "") }

// CloseWithStatus is Close with the status code and reason of the close
// frame sent (RFC 6455 §7.4; the reason is cut to 123 bytes), so that a
// peer, a browser page say, learns why the connection ends.
func (c *Conn) CloseWithStatus(code uint16, reason string) error {
	if len(reason) > 123 {
		reason = reason[:123] // a control frame's payload is at most 125 bytes
	}
	payload := append(binary.BigEndian.AppendUint16(nil, code), reason...)
	c.mu.Lock()
	if c.closing {
		// A second Close cuts the first one's handshake short.
		c.mu.Unlock()
		c.nc.Close()
		return net.ErrClosed
	}
	c.closing = true
	sendClose := !c.closeSent
	c.closeSent = true
	c.mu.Unlock()

	sent := false
	if sendClose && c.wmu.TryLock() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.closeTimeout))
		sent = c.writeFrame(opClose, true, payload) == nil
		c.wmu.Unlock()
	}
	if sent {
		c.awaitPeerClose()
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// awaitPeerClose waits for the peer's close frame: seen by a concurrent
// Read, or read here if nobody is reading.
func (c *Conn) awaitPeerClose() {
	deadline := time.Now().Add(c.closeTimeout)
	if c.rmu.TryLock() {
		_ = c.nc.SetReadDeadline(deadline)
		for c.rerr == nil {
			// Skip unread payload, then look at the next frame.
			for c.remaining > 0 && c.rerr == nil {
				if err := c.fill(1); err != nil {
					c.rerr = err
					break
				}
				k := int(min(int64(c.rend-c.rpos), c.remaining))
				c.rpos += k
				c.remaining -= int64(k)
			}
			if c.rerr != nil {
				break
			}
			if err := c.readHeader(); err != nil {
				c.rerr = err
			}
		}
		c.rmu.Unlock()
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c.peerClosed:
	case <-t.C:
	}
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// maskBytes XORs b with the mask starting at mask offset pos, eight bytes at
// a time where it can, and returns the next offset.
func maskBytes(mask [4]byte, pos int, b []byte) int {
	i := 0
	// Byte-wise until pos is aligned to the mask.
	for ; pos&3 != 0 && i < len(b); i++ {
		b[i] ^= mask[pos&3]
		pos++
	}
	if len(b)-i >= 8 {
		k := uint64(binary.LittleEndian.Uint32(mask[:]))
		k |= k << 32
		for ; len(b)-i >= 8; i += 8 {
			v := binary.LittleEndian.Uint64(b[i:])
			binary.LittleEndian.PutUint64(b[i:], v^k)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= mask[pos&3]
		pos++
	}
	return pos & 3
}

// rotateMask returns the mask to apply to the byte following one masked at
// offset off-1, so the next read can start at offset 0.
func rotateMask(m [4]byte, off int) [4]byte {
	return [4]byte{m[off&3], m[(off+1)&3], m[(off+2)&3], m[(off+3)&3]}
}
