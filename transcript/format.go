// Package transcript records protocol sessions as line-oriented JSON and
// replays them without sockets.
//
// # The format
//
// A transcript is a text file of JSON objects, one per line (JSON Lines),
// readable and diff-friendly. The first line is a header:
//
//	{"transcript":1,"protocol":"qmp","side":"client"}
//
// "transcript" is the format version (1); "protocol" names what was spoken
// ("qmp", "hgframe", or anything else); "side" says which end recorded it
// ("client" or "server"), so that "send" and "recv" below have a meaning;
// "note" is free text. Every further line is one entry:
//
//	{"conn":1,"t":0,"ev":"open"}
//	{"conn":1,"t":0.000412,"ev":"recv","text":"{\"QMP\": {\"version\": …}}"}
//	{"conn":1,"t":0.00053,"ev":"send","text":"{\"execute\": \"qmp_capabilities\", \"id\": 1}"}
//	{"conn":1,"t":0.0011,"ev":"send","fds":1}
//	{"conn":1,"t":2.5,"ev":"close","by":"peer","err":"transport: peer closed the connection: EOF"}
//
// The fields of an entry:
//
//   - "conn" numbers the connections of the session from 1; a transcript may
//     hold several (a client that reconnects).
//   - "t" is the time in seconds since the transcript began (microsecond
//     precision). Replay ignores it unless asked to keep time.
//   - "ev" is what happened: "open" and "close" mark connection boundaries
//     ("err" on close says why it ended, "by":"peer" that the other side
//     closed the stream); "send" is bytes the recording side wrote; "recv"
//     is bytes it read.
//   - "text" holds the bytes when they are valid UTF-8, "base64" (standard
//     encoding) otherwise. A recorder that splits a JSON stream writes one
//     message per entry, without the whitespace between messages; otherwise
//     an entry is what one read returned, or one Send.
//   - "frame" holds one frame of Mercurial's frame protocol in its human
//     syntax (frame.ParseHuman), instead of "text" or "base64", when the
//     recorder splits a frame stream.
//   - "fds" counts file descriptors passed with the entry (SCM_RIGHTS); the
//     descriptors themselves cannot be recorded.
//   - "err" on a send or recv entry reports bytes the recorder's splitter
//     could not read as a message.
//
// Unknown fields are ignored when reading, so later versions may add some.
package transcript

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/wirereactor/wirereactor/frame"
)

// Version is the format version this package writes and reads.
const Version = 1

// MaxLine bounds one line of a transcript when reading: 64 MiB, room for a
// QMP message at its 10 MiB limit even with every byte escaped.
const MaxLine = 64 << 20

// Ev is what an entry records.
type Ev string

// The entry kinds.
const (
	EvOpen  Ev = "open"  // a connection began
	EvSend  Ev = "send"  // the recording side wrote bytes
	EvRecv  Ev = "recv"  // the recording side read bytes
	EvClose Ev = "close" // the connection ended; Err says why
)

// Header is the first line of a transcript.
type Header struct {
	Version  int    `json:"transcript"`
	Protocol string `json:"protocol,omitempty"`
	Side     string `json:"side,omitempty"` // "client" (the default) or "server"
	Note     string `json:"note,omitempty"`
}

// Entry is one line of a transcript after the header.
type Entry struct {
	Conn   int     `json:"conn"`
	T      float64 `json:"t"`
	Ev     Ev      `json:"ev"`
	Text   string  `json:"text,omitempty"`
	Base64 []byte  `json:"base64,omitempty"`
	Frame  string  `json:"frame,omitempty"` // one frame in Mercurial's human syntax
	FDs    int     `json:"fds,omitempty"`
	By     string  `json:"by,omitempty"` // close: "peer" when the other side closed the stream
	Err    string  `json:"err,omitempty"`

	// Line is the entry's line number in the file it was read from (the
	// header is line 1); zero for entries not read from a file.
	Line int `json:"-"`
}

// Bytes returns the entry's bytes, from Text, Base64 or Frame (nil for a
// Frame Read did not check).
func (e Entry) Bytes() []byte {
	switch {
	case e.Base64 != nil:
		return e.Base64
	case e.Frame != "":
		f, err := frame.ParseHuman(e.Frame)
		if err != nil {
			return nil
		}
		return f.Append(nil)
	}
	return []byte(e.Text)
}

// Time returns T as a duration.
func (e Entry) Time() time.Duration {
	return time.Duration(math.Round(e.T*1e6)) * time.Microsecond
}

// NewEntry returns an entry for p, in Text when p is valid UTF-8 and in
// Base64 otherwise, with T rounded to the microsecond.
func NewEntry(conn int, t time.Duration, ev Ev, p []byte) Entry {
	e := Entry{Conn: conn, T: seconds(t), Ev: ev}
	if utf8.Valid(p) {
		e.Text = string(p)
	} else {
		e.Base64 = bytes.Clone(p)
	}
	return e
}

func seconds(t time.Duration) float64 {
	return float64(t.Round(time.Microsecond)/time.Microsecond) / 1e6
}

// Transcript is a transcript read whole.
type Transcript struct {
	Header  Header
	Entries []Entry
}

// Conns returns the connection numbers present, in order of appearance.
func (t *Transcript) Conns() []int {
	var out []int
	seen := map[int]bool{}
	for _, e := range t.Entries {
		if !seen[e.Conn] {
			seen[e.Conn] = true
			out = append(out, e.Conn)
		}
	}
	return out
}

// ErrFormat is matched by errors.Is for every error reading a malformed
// transcript.
var ErrFormat = errors.New("transcript: malformed")

// FormatError reports a malformed line of a transcript.
type FormatError struct {
	Line int    // 1-based
	Msg  string // what was wrong
}

// Error names the line and what was wrong.
func (e *FormatError) Error() string {
	return fmt.Sprintf("transcript: line %d: %s", e.Line, e.Msg)
}

// Is reports whether target is ErrFormat.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Read reads a whole transcript, checking every line. A line longer than
// MaxLine, a header of another version, an unknown "ev", a connection number
// below 1, a negative time, or an entry with both "text" and "base64" is a
// *FormatError naming the line.
func Read(r io.Reader) (*Transcript, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	t := &Transcript{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			if err := json.Unmarshal(b, &t.Header); err != nil {
				return nil, &FormatError{Line: 1, Msg: "header: " + err.Error()}
			}
			if t.Header.Version != Version {
				return nil, &FormatError{Line: 1, Msg: fmt.Sprintf("header: version %d, want %d", t.Header.Version, Version)}
			}
			if s := t.Header.Side; s != "" && s != "client" && s != "server" {
				return nil, &FormatError{Line: 1, Msg: fmt.Sprintf("header: side %q is neither client nor server", s)}
			}
			continue
		}
		if len(b) == 0 {
			continue // blank lines are allowed, for hand-written transcripts
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, &FormatError{Line: line, Msg: err.Error()}
		}
		e.Line = line
		if err := check(e); err != "" {
			return nil, &FormatError{Line: line, Msg: err}
		}
		t.Entries = append(t.Entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &FormatError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", MaxLine)}
		}
		return nil, fmt.Errorf("transcript: reading line %d: %w", line+1, err)
	}
	if line == 0 {
		return nil, &FormatError{Line: 1, Msg: "no header"}
	}
	return t, nil
}

func check(e Entry) string {
	switch e.Ev {
	case EvOpen, EvSend, EvRecv, EvClose:
	default:
		return fmt.Sprintf("unknown ev %q", e.Ev)
	}
	switch {
	case e.Conn < 1:
		return fmt.Sprintf("conn %d is below 1", e.Conn)
	case e.T < 0 || math.IsNaN(e.T) || math.IsInf(e.T, 0):
		return fmt.Sprintf("time %v is not a non-negative number of seconds", e.T)
	case e.Text != "" && e.Base64 != nil || e.Frame != "" && (e.Text != "" || e.Base64 != nil):
		return "more than one of text, base64 and frame"
	case e.FDs < 0:
		return fmt.Sprintf("fds %d is negative", e.FDs)
	case e.By != "" && (e.By != "peer" || e.Ev != EvClose):
		return fmt.Sprintf("by %q on a %s entry", e.By, e.Ev)
	}
	if e.Frame != "" {
		if _, err := frame.ParseHuman(e.Frame); err != nil {
			return err.Error()
		}
	}
	return ""
}

// Writer writes a transcript: the header first, then one entry per line.
// It is not safe for concurrent use; Recorder serialises its writes.
type Writer struct {
	w   io.Writer
	buf bytes.Buffer
	enc *json.Encoder
}

// NewWriter writes the header h (Version filled in) to w and returns a
// Writer for the entries.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	tw := &Writer{w: w}
	tw.enc = json.NewEncoder(&tw.buf)
	tw.enc.SetEscapeHTML(false) // "<" stays readable
	h.Version = Version
	return tw, tw.write(h)
}

// Write writes e as one line.
func (w *Writer) Write(e Entry) error { return w.write(e) }

func (w *Writer) write(v any) error {
	w.buf.Reset()
	if err := w.enc.Encode(v); err != nil { // Encode ends the line
		return fmt.Errorf("transcript: %w", err)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	return nil
}
