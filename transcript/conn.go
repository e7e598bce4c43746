package transcript

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// errClosedLocally is the cause RecordConn records when the connection is
// closed by its owner.
var errClosedLocally = errors.New("closed by the recording side")

// RecordConn returns c with everything read from it and written to it
// recorded by rec, and its end too: a read that reports the end of the
// stream records the peer closing, Close records the recording side closing
// (whichever comes first). It records any program that connects through a
// dialer, such as qmp.Client.ConnectDialer, without hooks. One RecordConn
// records one connection.
//
// A connection that passes file descriptors (unix.FDConn, as a unix socket
// of transport/unix) still does: the result is a unix.FDConn too, so
// qmpclient's ExecuteWithFiles works while recording, and descriptors
// written are recorded as a send entry with "fds" (their count) just
// before the bytes they travel with. Descriptors received are handed
// through (TakeFDs) but not recorded.
func RecordConn(c net.Conn, rec *Recorder) net.Conn {
	rc := &recordingConn{Conn: c, rec: rec}
	if fc, ok := c.(unix.FDConn); ok {
		return &recordingFDConn{recordingConn: rc, fc: fc}
	}
	return rc
}

type recordingConn struct {
	net.Conn
	rec  *Recorder
	once sync.Once
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.rec.Inbound(p[:n])
	}
	if err != nil {
		c.end(err)
	}
	return n, err
}

// Write records p before writing it, as the transport's OnOutbound does:
// recorded after, a quick answer could be read, and recorded, first.
func (c *recordingConn) Write(p []byte) (int, error) {
	c.rec.Outbound(p)
	return c.Conn.Write(p)
}

func (c *recordingConn) Close() error {
	c.end(errClosedLocally)
	return c.Conn.Close()
}

// recordingFDConn is a recordingConn that passes descriptors.
type recordingFDConn struct {
	*recordingConn
	fc unix.FDConn
}

// WriteFDs records the descriptors and p before writing them, as Write.
func (c *recordingFDConn) WriteFDs(p []byte, files ...*os.File) (int, error) {
	if len(files) > 0 && len(p) > 0 { // without data nothing is passed (unix.ErrNoData)
		c.rec.PassFDs(len(files))
	}
	c.rec.Outbound(p)
	return c.fc.WriteFDs(p, files...)
}

// TakeFDs hands over the descriptors the connection received.
func (c *recordingFDConn) TakeFDs() []*os.File { return c.fc.TakeFDs() }

// end records the end once. A read error after a local Close is a
// consequence of it, so the first cause wins.
func (c *recordingConn) end(err error) { c.once.Do(func() { c.rec.End(err) }) }

// Serve runs machine m over conn — a replaying peer behind an in-memory
// connection (net.Pipe), say, for a client that needs a net.Conn — until m
// ends or conn fails, and then closes conn. It returns nil when m ended
// cleanly (an Error with io.EOF) and otherwise the first error: m's, the
// connection's, or ctx's, which also ends the wait.
func Serve[T any](ctx context.Context, conn net.Conn, m action.Machine[T]) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 32<<10)
	eof := false
	for {
		for a := m.Next(); a.Kind != action.KindWantMore; a = m.Next() {
			switch a.Kind {
			case action.KindSend:
				if _, err := conn.Write(a.Bytes); err != nil {
					return errOr(ctx, err)
				}
			case action.KindError:
				if errors.Is(a.Err, io.EOF) {
					return nil
				}
				return a.Err
			}
		}
		n, err := conn.Read(buf)
		if n > 0 {
			m.Feed(buf[:n])
			continue
		}
		if err == io.EOF {
			if eof {
				return errors.New("transcript: the machine did not end at the end of its input")
			}
			eof = true
			m.FeedEOF()
			continue
		}
		if err != nil {
			return errOr(ctx, err)
		}
	}
}

// ErrDialedTwice is returned by the dialer of DialPipe when dialed again:
// a replaying machine serves one connection.
var ErrDialedTwice = errors.New("transcript: DialPipe's dialer dialed twice: a machine serves one connection")

// DialPipe returns a dialer for a client that connects through one
// (qmpclient.Client.ConnectDialer) and serves m to it: its Dial returns one
// end of a new net.Pipe and runs Serve(ctx, other end, m) in the
// background. Serve's result arrives on the channel (buffered) once m ends,
// the client hangs up, or ctx ends. Only the first Dial succeeds.
func DialPipe[T any](ctx context.Context, m action.Machine[T]) (transport.Dialer, <-chan error) {
	served := make(chan error, 1)
	var dialed atomic.Bool
	return transport.DialFunc(func(context.Context) (net.Conn, error) {
		if dialed.Swap(true) {
			return nil, ErrDialedTwice
		}
		mine, theirs := net.Pipe()
		go func() { served <- Serve(ctx, theirs, m) }()
		return mine, nil
	}), served
}

func errOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
