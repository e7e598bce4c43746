package transport

import (
	"context"
	"log/slog"
	"time"

	"github.com/wirereactor/wirereactor/action"
)

// Defaults for the zero Config.
const (
	DefaultReadBufferSize   = 64 << 10
	DefaultMaxPendingOutput = 1 << 20
	DefaultDeliverQueue     = 128
	DefaultIdleResume       = 10 * time.Millisecond
)

// Config configures a Session. Only NewMachine is required; every other zero
// field means a sane default.
type Config[T any, M action.Machine[T]] struct {
	// NewMachine returns a fresh machine for each connection.
	NewMachine func() M

	// Handshake, if set, runs the protocol's opening exchange (a QMP greeting
	// and qmp_capabilities, say) once the stream is up: the loops are
	// running, the state is Connecting, and Do and Recv may be used. If it
	// returns an error, the session is torn down, returns to Idle, and the
	// connecting call returns a *ConnectError with Phase "handshake". ctx is
	// cancelled by Disconnect and by the connecting call's context.
	Handshake func(ctx context.Context, s *Session[T, M]) error

	// Name identifies the connection in logs.
	Name string
	// Logger receives the session's logs, with attribute session=Name;
	// nil means slog.Default().
	Logger *slog.Logger

	// ReadBufferSize is the largest read buffer (default 64 KiB). The
	// buffer starts at 4 KiB, so an idle connection holds little, and
	// doubles after every read that fills it, up to this size.
	ReadBufferSize int
	// MaxPendingOutput is the soft limit of bytes waiting to be written
	// (default 1 MiB); see the package documentation.
	MaxPendingOutput int
	// DeliverQueue is the soft limit of delivered values waiting for Recv
	// (default 128); see the package documentation.
	DeliverQueue int

	// Retain, if set, is applied to every delivered value before it is
	// queued or consumed, under the session's lock. It must return a value
	// that stays valid after the machine's next call: delivered values may
	// alias the machine's input (the read buffer is reused once the machine
	// says WantMore) or its own buffers.
	//
	// When Retain is nil and the machine implements action.Retainer (as
	// reactor.ClientMachine does), the machine's Retain method is used
	// instead, so such machines are safe without configuration. Set Retain
	// to override it: with a cheaper copy, or with func(v T) T { return v }
	// when every value is consumed (by Consume) before the next read.
	Retain func(v T) T

	// OnInbound sees every chunk of bytes read from the stream, before the
	// machine does. p is valid only during the call.
	OnInbound func(p []byte)
	// OnOutbound sees the bytes of every Send action, in order, as they are
	// queued. It runs with the session's lock held: it must not block or call
	// the session. p is valid only during the call.
	OnOutbound func(p []byte)
	// OnDeliver sees every delivered value as it is queued for Recv, under
	// the same rules as OnOutbound.
	OnDeliver func(v T)

	// Consume, if set, takes every delivered value instead of the Recv
	// queue, on the goroutine that ran the machine (the reader, or a Do
	// caller), right after Retain and OnDeliver. It runs with the session's
	// lock held: it must not block or call the session. Recv then returns
	// nothing but the end of the session (its root cause, as usual), and
	// DeliverQueue does not apply. It saves a goroutine hop per value for
	// an application that only routes them, e.g. to per-request buffered
	// channels.
	Consume func(v T)

	// OnEnd, if set, is called once per connection when it ends, with the
	// session's root cause so far (ErrClosed after a clean Disconnect), as
	// Recv would return it once the queue is drained. It runs on the
	// session's read loop without the session's lock, before Disconnect
	// returns and before the session is Idle again; it must not call
	// Disconnect or wait on the session. It lets an application that
	// routes values with Consume learn of the end without a goroutine
	// waiting in Recv.
	OnEnd func(err error)

	// IdleResume is how long the reader role stays free after a waiting
	// caller (Recv, Await) read the stream itself and left, before the
	// read loop takes it back; zero means DefaultIdleResume. A caller that
	// waits again within it reads again itself, with no goroutine hand-off,
	// while values nobody waits for (events, say) stay unread for up to
	// twice this long. Each period a busy session's timer fires once,
	// which costs some CPU, so a protocol whose unsolicited messages are
	// waited for with Await (and so read by their waiter) can set it
	// longer.
	IdleResume time.Duration

	// HalfClose keeps the session running when the peer closes its
	// sending side after its last request (a half-close, as `nc -N`
	// does): the read loop stops, Recv returns the values delivered so
	// far and then ErrPeerClosed, and Do and queued output keep working
	// until Disconnect, which flushes as usual. The machine is not fed
	// the end of stream, so a message left partial is dropped, as QEMU
	// drops it. A write error still ends the session, and so does the
	// end of stream of a unix socket whose peer closed it entirely (on
	// Linux, where it can be told from a half-close; a TCP peer's close
	// looks like a half-close until a write fails).
	HalfClose bool
}
