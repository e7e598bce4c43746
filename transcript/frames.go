package transcript

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// NewFramePeer returns a peer replaying the server side of connection
// cfg.Conn of a transcript of Mercurial's frame protocol t, for a
// reactor.ClientMachine (or, with cfg.PlayClient, the client side for a
// reactor.ServerMachine), whichever side recorded t. Frames are compared
// whole, request and stream ids included: the reactors number them
// deterministically. A mismatch shows both frames in human syntax and the
// fields that differ.
func NewFramePeer(t *Transcript, cfg PeerConfig) (*Peer, error) {
	return newPeer(t, cfg, frameDialect{})
}

// frameDialect matches frames byte for byte.
type frameDialect struct{}

func (frameDialect) splitter() splitter { return new(frameSplitter) }

func (frameDialect) wire(dst, msg []byte) []byte { return append(dst, msg...) }

func (frameDialect) show(msg []byte) string {
	if h, ok := humanFrame(msg); ok {
		return h
	}
	return strconv.Quote(string(msg))
}

func (d frameDialect) match(want, got []byte) (bool, []string) {
	if bytes.Equal(want, got) {
		return true, nil
	}
	w := strings.SplitN(d.show(want), " ", 6)
	g := strings.SplitN(d.show(got), " ", 6)
	if len(w) != 6 || len(g) != 6 {
		return false, nil
	}
	var diff []string
	for i, name := range []string{"request id", "stream id", "stream flags", "type", "flags", "payload"} {
		if w[i] != g[i] {
			diff = append(diff, fmt.Sprintf("%s: expected %s, got %s", name, w[i], g[i]))
		}
	}
	return false, diff
}

// frameSplitter cuts a byte stream into whole frames (header and payload).
type frameSplitter struct {
	d   framing.Decoder
	buf []byte
}

func (s *frameSplitter) Feed(p []byte) { s.d.Feed(p) }
func (s *frameSplitter) FeedEOF()      { s.d.FeedEOF() }

// Next returns the next frame's bytes, valid until the next call.
func (s *frameSplitter) Next() ([]byte, error) {
	a := s.d.Next()
	switch a.Kind {
	case action.KindDeliver:
		s.buf = a.Value.Append(s.buf[:0])
		return s.buf, nil
	case action.KindError:
		return nil, a.Err // io.EOF at a clean end
	}
	return nil, nil
}

// frameEntry sets e to hold the frame msg: in human syntax when that reads
// back to the same bytes, else as the bytes themselves.
func frameEntry(e *Entry, msg []byte) {
	if h, ok := humanFrame(msg); ok {
		e.Frame = h
		return
	}
	raw := NewEntry(e.Conn, 0, e.Ev, msg)
	e.Text, e.Base64 = raw.Text, raw.Base64
}

// humanFrame renders one whole frame in Mercurial's human syntax, and
// reports whether frame.ParseHuman reads it back to the same bytes.
func humanFrame(msg []byte) (string, bool) {
	if len(msg) < frame.HeaderSize {
		return "", false
	}
	h, err := frame.ParseHeader(msg)
	if err != nil || frame.HeaderSize+h.Length != len(msg) {
		return "", false
	}
	payload := msg[frame.HeaderSize:]
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %s %s %s ", h.RequestID, h.StreamID,
		names(h.StreamFlags.String(), uint8(h.StreamFlags)), h.Type, names(h.Type.FlagsString(h.Flags), uint8(h.Flags)))
	literal := false
	if vs, err := hgcbor.DecodeAll(payload); err == nil && len(vs) == 1 {
		if again, err := hgcbor.Marshal(vs[0]); err == nil && bytes.Equal(again, payload) {
			b.WriteString("cbor:" + hgcbor.PythonLiteral(vs[0]))
			literal = true
		}
	}
	if !literal {
		escapeInto(&b, payload)
	}
	s := b.String()
	f, err := frame.ParseHuman(s)
	return s, err == nil && bytes.Equal(f.Append(nil), msg)
}

// names returns Mercurial's flag names, or the number when a bit has none.
func names(named string, v uint8) string {
	if v == 0 {
		return "0"
	}
	if strings.Contains(named, "<unknown") {
		return strconv.Itoa(int(v))
	}
	return named
}

// escapeInto writes p as a human-syntax byte string: printable ASCII as
// is, the rest escaped, and a leading "cbor:" broken up so it reads as
// bytes.
func escapeInto(b *strings.Builder, p []byte) {
	for i, c := range p {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case i == 0 && bytes.HasPrefix(p, []byte("cbor:")):
			fmt.Fprintf(b, `\x%02x`, c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(b, `\x%02x`, c)
		}
	}
}
