package transport_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

func TestSessionRoundTripOverPipe(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{Name: "pipe"})
	require.Equal(t, transport.RunstateIdle, s.State())
	peer := startPipe(t, s)
	require.Equal(t, transport.RunstateRunning, s.State())

	// Application → peer.
	go func() { _ = send(ctx, s, "hello") }()
	got, err := readMsg(peer)
	require.NoError(t, err)
	require.Equal(t, "hello", got)

	// Peer → application, several messages in one write and one message
	// split over writes.
	go func() {
		b := lenmsg.Append(nil, []byte("one"))
		b = lenmsg.Append(b, []byte("two"))
		whole := lenmsg.Append(nil, []byte("three"))
		_, _ = peer.Write(append(b, whole[:5]...))
		_, _ = peer.Write(whole[5:])
	}()
	for _, want := range []string{"one", "two", "three"} {
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, want, v)
	}
	require.NoError(t, s.Disconnect(ctx))
	require.Equal(t, transport.RunstateIdle, s.State())
}

func TestSessionStateErrors(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{})
	var se *transport.StateError

	_, err := s.Recv(ctx)
	require.ErrorAs(t, err, &se)
	require.Equal(t, transport.RunstateIdle, se.State)
	require.Equal(t, "recv", se.Op)

	err = send(ctx, s, "x")
	require.ErrorAs(t, err, &se)
	require.Equal(t, transport.RunstateIdle, se.State)

	err = s.Accept(ctx)
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "StartServer")

	err = s.Exec(ctx, func(net.Conn) error { return nil })
	require.ErrorAs(t, err, &se)

	require.NoError(t, s.Disconnect(ctx), "Disconnect in Idle is a no-op")

	startPipe(t, s)
	a, _ := net.Pipe()
	err = s.Start(ctx, a)
	require.ErrorAs(t, err, &se)
	require.Equal(t, transport.RunstateRunning, se.State)
	require.Equal(t, transport.RunstateIdle, se.Required)
	require.Contains(t, err.Error(), "already running")

	err = s.Connect(ctx, transport.DialFunc(func(context.Context) (net.Conn, error) {
		t.Fatal("dialed in the wrong state")
		return nil, nil
	}))
	require.ErrorAs(t, err, &se)

	require.NoError(t, s.Disconnect(ctx))
	require.NoError(t, s.Disconnect(ctx), "Disconnect is idempotent")
	require.Equal(t, transport.RunstateIdle, s.State())
}

func TestSessionStateChangesAreObservable(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{})
	step := func(do func(), want transport.Runstate) {
		t.Helper()
		ch := s.Changed()
		do()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no state change to %v", want)
		}
		require.Equal(t, want, s.State())
	}
	ln := newPipeListener()
	hangUp := make(chan struct{})
	step(func() { require.NoError(t, s.StartServer(ctx, ln)) }, transport.RunstateConnecting)
	go func() {
		if c, err := ln.Dial(ctx); err == nil {
			<-hangUp
			c.Close()
		}
	}()
	step(func() { require.NoError(t, s.Accept(ctx)) }, transport.RunstateRunning)
	step(func() { close(hangUp) }, transport.RunstateDisconnecting)
	step(func() { require.ErrorIs(t, s.Disconnect(ctx), transport.ErrPeerClosed) }, transport.RunstateIdle)
}

func TestSessionHandshake(t *testing.T) {
	greeting := func(ctx context.Context, s *sess) error {
		v, err := s.Recv(ctx)
		if err != nil {
			return err
		}
		if v != "hello" {
			return errors.New("unexpected greeting " + v)
		}
		return send(ctx, s, "capabilities")
	}
	tests := []struct {
		name      string
		peer      func(c net.Conn)
		wantErr   string
		wantCause any
	}{
		{
			name: "ok",
			peer: func(c net.Conn) {
				_, _ = c.Write(lenmsg.Append(nil, []byte("hello")))
				_, _ = readMsg(c)
			},
		},
		{
			name:    "wrong greeting",
			peer:    func(c net.Conn) { _, _ = c.Write(lenmsg.Append(nil, []byte("go away"))) },
			wantErr: "transport: handshake failed: unexpected greeting go away",
		},
		{
			name:      "peer hangs up",
			peer:      func(c net.Conn) { c.Close() },
			wantErr:   "transport: handshake failed: transport: peer closed the connection: EOF",
			wantCause: io.EOF,
		},
		{
			name:      "peer breaks protocol",
			peer:      func(c net.Conn) { _, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff}) },
			wantErr:   "transport: handshake failed: lenmsg: message bytes: 4294967295 exceeds the limit of 1048576",
			wantCause: new(*action.LimitError),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)
			s := newSession(cfg{Handshake: greeting})
			a, b := net.Pipe()
			defer b.Close()
			peerDone := make(chan struct{})
			go func() { defer close(peerDone); tt.peer(b) }()
			err := s.Start(ctx, a)
			<-peerDone
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, transport.RunstateRunning, s.State())
				require.NoError(t, s.Disconnect(ctx))
				return
			}
			require.EqualError(t, err, tt.wantErr)
			var ce *transport.ConnectError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "handshake", ce.Phase)
			switch c := tt.wantCause.(type) {
			case nil:
			case **action.LimitError:
				require.ErrorAs(t, err, c)
			default:
				require.ErrorIs(t, err, c.(error))
			}
			require.Equal(t, transport.RunstateIdle, s.State())
		})
	}
}

func TestSessionConnectFailures(t *testing.T) {
	errRefused := errors.New("connection refused")
	tests := []struct {
		name    string
		dial    func(ctx context.Context) (net.Conn, error)
		cancel  bool // cancel the context once dialing started
		wantErr error
	}{
		{"refused", func(context.Context) (net.Conn, error) { return nil, errRefused }, false, errRefused},
		{"cancelled", func(ctx context.Context) (net.Conn, error) { <-ctx.Done(); return nil, errors.New("dial aborted") }, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			s := newSession(cfg{})
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			dialing := make(chan struct{})
			go func() {
				if tt.cancel {
					<-dialing
					cancel()
				}
			}()
			err := s.Connect(ctx, transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
				require.Equal(t, transport.RunstateConnecting, s.State())
				close(dialing)
				return tt.dial(ctx)
			}))
			var ce *transport.ConnectError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "connect", ce.Phase)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, transport.RunstateIdle, s.State())
		})
	}
}

func TestSessionDisconnectCancelsConnecting(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	t.Run("dial", func(t *testing.T) {
		s := newSession(cfg{})
		dialing := make(chan struct{})
		errc := make(chan error, 1)
		go func() {
			errc <- s.Connect(ctx, transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
				close(dialing)
				<-ctx.Done()
				return nil, ctx.Err()
			}))
		}()
		<-dialing
		require.NoError(t, s.Disconnect(ctx))
		require.Equal(t, transport.RunstateIdle, s.State())
		require.ErrorIs(t, <-errc, context.Canceled)
	})
	t.Run("listening", func(t *testing.T) {
		s := newSession(cfg{})
		ln := newPipeListener()
		require.NoError(t, s.StartServer(ctx, ln))
		require.Equal(t, transport.RunstateConnecting, s.State())
		require.NoError(t, s.Disconnect(ctx))
		require.Equal(t, transport.RunstateIdle, s.State())
		_, err := ln.Dial(ctx)
		require.Error(t, err, "the listener is closed")
	})
	t.Run("accepting", func(t *testing.T) {
		s := newSession(cfg{})
		ln := &signalListener{pipeListener: newPipeListener(), accepting: make(chan struct{})}
		require.NoError(t, s.StartServer(ctx, ln))
		errc := make(chan error, 1)
		go func() { errc <- s.Accept(ctx) }()
		<-ln.accepting
		require.NoError(t, s.Disconnect(ctx))
		err := <-errc
		var ce *transport.ConnectError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "accept", ce.Phase)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("handshake", func(t *testing.T) {
		inHandshake := make(chan struct{})
		s := newSession(cfg{Handshake: func(ctx context.Context, s *sess) error {
			close(inHandshake)
			_, err := s.Recv(ctx) // the peer never greets
			return err
		}})
		a, b := net.Pipe()
		defer b.Close()
		errc := make(chan error, 1)
		go func() { errc <- s.Start(ctx, a) }()
		<-inHandshake
		require.NoError(t, s.Disconnect(ctx))
		require.Equal(t, transport.RunstateIdle, s.State())
		err := <-errc
		var ce *transport.ConnectError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "handshake", ce.Phase)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestSessionAcceptOnlyOneConnection(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := echoSession(cfg{})
	ln := newPipeListener()
	require.NoError(t, s.StartServer(ctx, ln))
	first, err := ln.Dial(ctx)
	require.NoError(t, err)
	defer first.Close()
	second, err := ln.Dial(ctx) // queued before Accept
	require.NoError(t, err)
	defer second.Close()
	require.NoError(t, s.Accept(ctx))

	writeMsg(t, first, "ping")
	got, err := readMsg(first)
	require.NoError(t, err)
	require.Equal(t, "ping", got)

	_, err = second.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the extra connection is closed")
	_, err = ln.Dial(ctx)
	require.Error(t, err, "no more connections are accepted")
	require.NoError(t, s.Disconnect(ctx))
}

func TestSessionAcceptCancelled(t *testing.T) {
	leakCheck(t)
	s := newSession(cfg{})
	require.NoError(t, s.StartServer(testCtx(t), newPipeListener()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := s.Accept(ctx)
	var ce *transport.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "accept", ce.Phase)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateIdle, s.State())
}

func TestSessionRootCause(t *testing.T) {
	errRead := errors.New("read: connection reset by peer")
	errWrite := errors.New("write: broken pipe")
	tests := []struct {
		name  string
		fault func(t *testing.T, s *sess, peer net.Conn, fc *faultConn)
		check func(t *testing.T, err error)
	}{
		{
			name:  "peer closes cleanly",
			fault: func(t *testing.T, s *sess, peer net.Conn, fc *faultConn) { peer.Close() },
			check: func(t *testing.T, err error) {
				require.ErrorIs(t, err, transport.ErrPeerClosed)
				require.ErrorIs(t, err, io.EOF)
			},
		},
		{
			name: "peer closes mid-message",
			fault: func(t *testing.T, s *sess, peer net.Conn, fc *faultConn) {
				_, _ = peer.Write(lenmsg.Append(nil, []byte("truncated"))[:7])
				peer.Close()
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, lenmsg.ErrTruncated) },
		},
		{
			name: "machine error",
			fault: func(t *testing.T, s *sess, peer net.Conn, fc *faultConn) {
				_, _ = peer.Write([]byte{0x7f, 0, 0, 0})
			},
			check: func(t *testing.T, err error) {
				var tl *action.LimitError
				require.ErrorAs(t, err, &tl)
				require.Equal(t, int64(0x7f000000), tl.Size)
			},
		},
		{
			name:  "read error",
			fault: func(t *testing.T, s *sess, peer net.Conn, fc *faultConn) { fc.readErr <- errRead },
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, errRead) },
		},
		{
			name: "write error",
			fault: func(t *testing.T, s *sess, peer net.Conn, fc *faultConn) {
				fc.writeErr = errWrite
				// Do may or may not see the failure; the session does.
				_ = send(context.Background(), s, "lost")
			},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, errWrite) },
		},
		{
			name: "peer closes mid-write",
			fault: func(t *testing.T, s *sess, peer net.Conn, fc *faultConn) {
				go func() {
					_, _ = io.ReadFull(peer, make([]byte, 100))
					peer.Close()
				}()
				_ = send(context.Background(), s, strings.Repeat("x", 10000))
			},
			check: func(t *testing.T, err error) {
				// The reader may see the EOF before the writer sees the
				// closed pipe; either is the root cause, consistently.
				if !errors.Is(err, io.ErrClosedPipe) {
					require.ErrorIs(t, err, transport.ErrPeerClosed)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)
			s := newSession(cfg{})
			a, peer := net.Pipe()
			defer peer.Close()
			fc := &faultConn{Conn: a, readErr: make(chan error, 1)}
			require.NoError(t, s.Start(ctx, fc))
			tt.fault(t, s, peer, fc)
			require.NoError(t, s.WaitState(ctx, transport.RunstateDisconnecting))
			// Recv and Do report the root cause too.
			_, err := s.Recv(ctx)
			tt.check(t, err)
			tt.check(t, send(ctx, s, "late"))
			err = s.Disconnect(ctx)
			tt.check(t, err)
			require.Equal(t, transport.RunstateIdle, s.State())
			require.NoError(t, s.Disconnect(ctx), "a second Disconnect reports nothing new")
		})
	}
}

// A read error racing Disconnect: whichever wins, Disconnect never reports
// a consequence of its own close (use of closed connection, closed pipe).
func TestSessionDisconnectRacingReadError(t *testing.T) {
	leakCheck(t)
	errRead := errors.New("connection reset by peer")
	for i := 0; i < 200; i++ {
		ctx := testCtx(t)
		s := newSession(cfg{})
		a, peer := net.Pipe()
		fc := &faultConn{Conn: a, readErr: make(chan error, 1)}
		require.NoError(t, s.Start(ctx, fc))
		go func() { fc.readErr <- errRead }()
		err := s.Disconnect(ctx)
		if err != nil {
			require.ErrorIs(t, err, errRead)
		}
		peer.Close()
	}
}

func TestSessionDisconnectFlushes(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{})
	peer := startPipe(t, s)
	big := strings.Repeat("abcdefgh", 64<<10)
	got := make(chan []string, 1)
	go func() {
		var msgs []string
		for {
			m, err := readMsg(peer)
			if err != nil {
				got <- msgs
				return
			}
			msgs = append(msgs, m)
		}
	}()
	for i := range 3 {
		require.NoError(t, send(ctx, s, big[:len(big)-i]))
	}
	require.NoError(t, s.Disconnect(ctx))
	msgs := <-got
	require.Len(t, msgs, 3)
	for i, m := range msgs {
		require.Equal(t, len(big)-i, len(m))
	}
}

func TestSessionDisconnectFlushAbandoned(t *testing.T) {
	leakCheck(t)
	s := newSession(cfg{})
	startPipe(t, s) // the peer never reads
	require.NoError(t, send(testCtx(t), s, "stuck"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Disconnect(ctx), transport.ErrFlushAbandoned)
	require.Equal(t, transport.RunstateIdle, s.State())
}

func TestSessionConcurrentDisconnect(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{})
	peer := startPipe(t, s)
	peer.Close()
	require.NoError(t, s.WaitState(ctx, transport.RunstateDisconnecting))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Disconnect(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(t, err, transport.ErrPeerClosed)
		}
	}
	require.Equal(t, transport.RunstateIdle, s.State())
}

func TestSessionDeliveryBackpressure(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	const queue = 4
	s := newSession(cfg{DeliverQueue: queue, ReadBufferSize: 64})
	peer := startPipe(t, s)
	const total = 200
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < total; n++ {
			// Each message is its own write; net.Pipe blocks until read.
			peer.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := peer.Write(lenmsg.Append(nil, []byte("0123456789"))); err != nil {
				break
			}
		}
		sent <- n
	}()
	n := <-sent
	// The reader stopped once the queue was full: at most the queue plus
	// one read's worth of messages (64 bytes / 14-byte messages) arrived.
	require.Less(t, n, total)
	require.LessOrEqual(t, n, queue+64/14+1)
	peer.SetWriteDeadline(time.Time{})
	for range n {
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "0123456789", v)
	}
	require.NoError(t, s.Disconnect(ctx))
}

func TestSessionOutputBackpressureAndCancel(t *testing.T) {
	leakCheck(t)
	s := newSession(cfg{MaxPendingOutput: 1024})
	startPipe(t, s) // the peer never reads
	ctx := testCtx(t)
	// The first Do's output is taken by the write loop (blocked in Write),
	// the next fill the pending buffer past its limit.
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err = send(short, s, strings.Repeat("y", 1000))
		cancel()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateRunning, s.State(), "a cancelled Do does not break the session")

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = s.Recv(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	err = s.Exec(short2, func(net.Conn) error { t.Error("a cancelled Exec ran"); return nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)

	short3, cancel3 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel3()
	require.ErrorIs(t, s.WaitState(short3, transport.RunstateIdle), context.DeadlineExceeded)

	require.ErrorIs(t, s.Disconnect(short3), transport.ErrFlushAbandoned)
}

func TestSessionExecIsOrdered(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := newSession(cfg{})
	peer := startPipe(t, s)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	require.NoError(t, send(ctx, s, "A"))
	require.NoError(t, s.Exec(ctx, func(c net.Conn) error {
		_, err := c.Write([]byte("raw"))
		return err
	}))
	require.NoError(t, send(ctx, s, "B"))
	require.NoError(t, s.Disconnect(ctx))
	want := append(lenmsg.Append(nil, []byte("A")), "raw"...)
	want = lenmsg.Append(want, []byte("B"))
	require.Equal(t, want, <-got)
}

func TestSessionHooks(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	var (
		mu                 sync.Mutex
		in, out, delivered []string
	)
	s := echoSession(cfg{
		OnInbound:  func(p []byte) { mu.Lock(); in = append(in, string(p)); mu.Unlock() },
		OnOutbound: func(p []byte) { mu.Lock(); out = append(out, string(p)); mu.Unlock() },
		OnDeliver:  func(v string) { mu.Lock(); delivered = append(delivered, v); mu.Unlock() },
	})
	peer := startPipe(t, s)
	writeMsg(t, peer, "ping")
	m, err := readMsg(peer)
	require.NoError(t, err)
	require.Equal(t, "ping", m)
	v, err := s.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "ping", v)
	require.NoError(t, s.Disconnect(ctx))
	wire := string(lenmsg.Append(nil, []byte("ping")))
	require.Equal(t, []string{wire}, in)
	require.Equal(t, []string{wire}, out)
	require.Equal(t, []string{"ping"}, delivered)
}

func TestSessionReconnects(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	s := echoSession(cfg{})
	for i := range 3 {
		peer := startPipe(t, s)
		msg := strings.Repeat("r", i+1)
		writeMsg(t, peer, msg)
		got, err := readMsg(peer)
		require.NoError(t, err)
		require.Equal(t, msg, got)
		require.NoError(t, s.Disconnect(ctx))
		_, err = s.Recv(ctx)
		var se *transport.StateError
		require.ErrorAs(t, err, &se)
	}
}

// The connecting call's own context bounds the handshake.
func TestSessionHandshakeDeadline(t *testing.T) {
	leakCheck(t)
	s := newSession(cfg{Handshake: func(ctx context.Context, s *sess) error {
		_, err := s.Recv(ctx) // the peer never greets
		return err
	}})
	a, b := net.Pipe()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.Start(ctx, a)
	var ce *transport.ConnectError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "handshake", ce.Phase)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, transport.RunstateIdle, s.State())
}

// Logs carry the connection's name.
func TestSessionLogsName(t *testing.T) {
	leakCheck(t)
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newSession(cfg{Name: "vm1-qmp", Logger: logger})
	peer := startPipe(t, s)
	peer.Close()
	require.NoError(t, s.WaitState(testCtx(t), transport.RunstateDisconnecting))
	require.ErrorIs(t, s.Disconnect(testCtx(t)), transport.ErrPeerClosed)
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.NotEmpty(t, lines)
	for _, line := range lines {
		require.Contains(t, line, "session=vm1-qmp")
	}
	require.Contains(t, buf.String(), "from=running to=disconnecting")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func TestSessionConsume(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	consumed := make(chan string, 300)
	s := newSession(cfg{
		DeliverQueue:   2, // would stop the reader if values were queued
		ReadBufferSize: 64,
		Consume:        func(v string) { consumed <- v },
	})
	peer := startPipe(t, s)
	const total = 200
	go func() {
		for i := range total {
			_, _ = peer.Write(lenmsg.Append(nil, []byte(strings.Repeat("x", i%20))))
		}
	}()
	for i := range total {
		require.Equal(t, strings.Repeat("x", i%20), <-consumed, "values go to Consume, in order")
	}
	// Recv sees no value, only the end of the session.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := s.Recv(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, peer.Close())
	_, err = s.Recv(ctx)
	require.ErrorIs(t, err, transport.ErrPeerClosed)
	require.ErrorIs(t, s.Disconnect(ctx), transport.ErrPeerClosed)
}

// A peer that sends and hangs up at once: the session is still
// established, its message is delivered, then the root cause is reported.
func TestSessionPeerSendsAndClosesAtOnce(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	for range 50 {
		s := newSession(cfg{})
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write(lenmsg.Append(nil, []byte("last words")))
			b.Close()
		}()
		require.NoError(t, s.Start(ctx, a))
		v, err := s.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, "last words", v)
		_, err = s.Recv(ctx)
		require.ErrorIs(t, err, transport.ErrPeerClosed)
		require.NoError(t, s.WaitState(ctx, transport.RunstateDisconnecting))
		require.ErrorIs(t, s.Disconnect(ctx), transport.ErrPeerClosed)
	}
}
