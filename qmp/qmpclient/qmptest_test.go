package qmpclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transport"
)

// The driven client against qmptest, the fake QEMU: behaviour that real
// QEMU cannot be made to show on demand.

func connectFake(t *testing.T, s *qmptest.Server) *qmpclient.Client {
	t.Helper()
	c := qmpclient.NewClient(qmpclient.Config{Name: t.Name()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx, s.Addr()))
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func dropped(t *testing.T, c *qmpclient.Client) uint64 {
	var n uint64
	require.NoError(t, c.Session().Do(context.Background(), func(m *qmp.ClientMachine) error { n = m.Dropped(); return nil }))
	return n
}

func TestDrivenClientListeners(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	s.Handle("emit", func(ctx context.Context, _ json.RawMessage) (any, error) {
		for i := range 5 {
			if err := qmptest.Emit(ctx, "TICK", map[string]int{"n": i}); err != nil {
				return nil, err
			}
			if err := qmptest.Emit(ctx, "TOCK", nil); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	n := func(ev qmp.Event) int {
		var d struct{ N int }
		_ = json.Unmarshal(ev.Data, &d)
		return d.N
	}
	all := c.Listen(qmpclient.ListenOptions{})
	ticks := c.Listen(qmpclient.ListenOptions{Names: []string{"TICK"}, Queue: 2})
	odd := c.Listen(qmpclient.ListenOptions{Filter: func(ev qmp.Event) bool { return ev.Name == "TICK" && n(ev)%2 == 1 }})
	_, err := c.Execute(ctx, "emit", nil)
	require.NoError(t, err)

	// Events precede the reply on the wire, so they are all queued by now.
	var names []string
	for range 10 {
		ev, err := all.Next(ctx)
		require.NoError(t, err)
		names = append(names, ev.Name)
	}
	require.Equal(t, []string{"TICK", "TOCK", "TICK", "TOCK", "TICK", "TOCK", "TICK", "TOCK", "TICK", "TOCK"}, names)

	// A full queue drops the oldest and counts.
	for _, want := range []int{3, 4} {
		ev, err := ticks.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, n(ev))
	}
	require.Equal(t, uint64(3), ticks.Dropped())

	for _, want := range []int{1, 3} {
		ev, err := odd.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, n(ev))
	}

	// Closed listeners say so; others end with the session.
	ticks.Close()
	_, err = ticks.Next(ctx)
	require.ErrorIs(t, err, qmpclient.ErrListenerClosed)
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	_, err = odd.Next(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, c.Disconnect(ctx))
	_, err = odd.Next(ctx)
	require.ErrorIs(t, err, qmpclient.ErrDisconnected)
}

func TestDrivenClientWaitEvent(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	s.Handle("run", func(ctx context.Context, args json.RawMessage) (any, error) {
		return nil, qmptest.EmitAfter(ctx, "DONE", args)
	})
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		ev  qmp.Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		ev, err := c.WaitEvent(ctx, "DONE", func(ev qmp.Event) bool { return string(ev.Data) == `{"job":2}` })
		got <- result{ev, err}
	}()
	// WaitEvent sees only events after it registered: keep triggering jobs
	// 0, 1, 2 until it has seen job 2.
	for i := 0; ; i++ {
		select {
		case r := <-got:
			require.NoError(t, r.err)
			require.Equal(t, `{"job":2}`, string(r.ev.Data))
			return
		default:
		}
		_, err := c.Execute(ctx, "run", map[string]int{"job": i % 3})
		require.NoError(t, err)
	}
}

// An event handler that executes a command on the same client (cont on
// STOP) must not deadlock, as go-qemu and govmm do.
func TestDrivenClientCommandFromEventHandler(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stops := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})
	resumes := c.Listen(qmpclient.ListenOptions{Names: []string{"RESUME"}})
	done := make(chan error, 1)
	go func() {
		if _, err := stops.Next(ctx); err != nil {
			done <- err
			return
		}
		_, err := c.Execute(ctx, "cont", nil)
		done <- err
	}()
	_, err := c.Execute(ctx, "stop", nil)
	require.NoError(t, err)
	require.NoError(t, <-done)
	_, err = resumes.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "running", s.Status())
}

func TestDrivenClientDisconnectFailsPending(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	hold := make(chan struct{})
	s.Handle("hang", func(context.Context, json.RawMessage) (any, error) {
		close(hold)
		return nil, qmptest.ErrNoReply
	})
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "hang", nil)
		errc <- err
	}()
	<-hold
	s.DropConnections()
	err := <-errc
	require.ErrorIs(t, err, qmpclient.ErrDisconnected)
	require.ErrorIs(t, err, transport.ErrPeerClosed, "wraps the root cause")
	require.Error(t, c.Disconnect(ctx))
	require.Equal(t, transport.RunstateIdle, c.State())

	// Executing while not connected is ErrDisconnected too.
	_, err = c.Execute(ctx, "x", nil)
	require.ErrorIs(t, err, qmpclient.ErrDisconnected)
}

func TestDrivenClientCancelledExecuteDropsLateReply(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	started := make(chan struct{})
	release := make(chan struct{})
	s.Handle("slow", func(context.Context, json.RawMessage) (any, error) {
		close(started)
		<-release
		return json.RawMessage(`{"late": true}`), nil
	})
	s.Handle("echo", qmptest.Echo)
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slowCtx, slowCancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(slowCtx, "slow", nil)
		errc <- err
	}()
	<-started
	slowCancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	close(release) // the late reply goes out, then echo's
	got, err := c.Execute(ctx, "echo", []byte(`{"mine": 1}`))
	require.NoError(t, err)
	require.Equal(t, `{"mine": 1}`, string(got), "the late reply went nowhere")
	require.Equal(t, uint64(1), c.LateReplies())
	require.Zero(t, dropped(t, c), "the client, not the machine, dropped it")
}

func TestDrivenClientStaleReplyAfterReconnect(t *testing.T) {
	// QEMU sends the reply to a command still running when its client left
	// to the next client. Ids keep counting across connections, so the new
	// connection does not mistake it for the reply to one of its commands.
	s := qmptest.StartUnix(t, qmptest.Config{})
	started := make(chan struct{})
	s.Handle("slow", func(ctx context.Context, _ json.RawMessage) (any, error) {
		close(started)
		return json.RawMessage(`{"stale": true}`), qmptest.WaitClientGone(ctx)
	})
	s.Handle("fresh", qmptest.Reply(json.RawMessage(`{"fresh": true}`)))
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "slow", nil)
		errc <- err
	}()
	<-started
	require.NoError(t, c.Disconnect(ctx))
	require.ErrorIs(t, <-errc, qmpclient.ErrDisconnected)

	require.NoError(t, c.Connect(ctx, s.Addr()))
	for range 3 {
		got, err := c.Execute(ctx, "fresh", nil)
		require.NoError(t, err)
		require.Equal(t, `{"fresh": true}`, string(got))
	}
	require.Equal(t, uint64(1), dropped(t, c), "the stale reply was dropped")
}

// Wait reports a queued event without taking it, and the end of the
// session like Next does.
func TestListenerWaitDoesNotTake(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	c := connectFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}})

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, l.Wait(short), context.DeadlineExceeded, "nothing queued yet")

	_, err := c.Execute(ctx, "stop", nil)
	require.NoError(t, err)
	require.NoError(t, l.Wait(ctx))
	require.NoError(t, l.Wait(ctx), "waiting twice still sees the queued event")
	ev, err := l.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "STOP", ev.Name)

	short2, cancelShort2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort2()
	require.ErrorIs(t, l.Wait(short2), context.DeadlineExceeded, "the only event was taken")

	require.NoError(t, c.Disconnect(ctx))
	require.ErrorIs(t, l.Wait(ctx), qmpclient.ErrDisconnected)
}

// connectSlowResume connects a client whose read loop takes the reading
// back only an hour after a caller read for itself.
func connectSlowResume(ctx context.Context, t *testing.T, s *qmptest.Server) *qmpclient.Client {
	t.Helper()
	c := qmpclient.NewClient(qmpclient.Config{Name: t.Name(), IdleResume: time.Hour})
	require.NoError(t, c.Connect(ctx, s.Addr()))
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// leaveRoleFree executes twice: the second Execute reads its own reply and
// leaves the reader role free, so nobody reads until a caller waits.
func leaveRoleFree(ctx context.Context, t *testing.T, c *qmpclient.Client) {
	t.Helper()
	for range 2 {
		_, err := c.Execute(ctx, "query-status", nil)
		require.NoError(t, err)
	}
}

// A goroutine waiting in Listener.Next or Wait reads the stream itself when
// nobody else does, so an event reaches it however long the read loop
// stays away (here an hour, the read loop's IdleResume after the Execute
// that read its own reply).
func TestWaitingListenerReadsTheEvent(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := connectSlowResume(ctx, t, s)
	for _, wait := range []string{"Next", "Wait", "WaitEvent"} {
		leaveRoleFree(ctx, t, c)
		l := c.Listen(qmpclient.ListenOptions{})
		got := make(chan error, 1)
		go func() {
			var err error
			switch wait {
			case "Next":
				var ev qmp.Event
				if ev, err = l.Next(ctx); err == nil && ev.Name != "PING" {
					err = fmt.Errorf("got event %s", ev.Name)
				}
			case "Wait":
				err = l.Wait(ctx)
			case "WaitEvent":
				_, err = c.WaitEvent(ctx, "PING", nil)
			}
			got <- err
		}()
		// Emit until the waiter has its event: WaitEvent's listener
		// exists only once the goroutine runs.
		tick := time.NewTicker(5 * time.Millisecond)
	wait:
		for {
			select {
			case err := <-got:
				require.NoError(t, err, wait)
				break wait
			case <-tick.C:
				require.NoError(t, s.Emit("PING", nil))
			case <-ctx.Done():
				t.Fatalf("%s: no event reached the waiting listener", wait)
			}
		}
		tick.Stop()
		l.Close()
	}
}

// Close ends a Next that is reading the stream for the listener.
func TestListenerCloseEndsAReadingNext(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := connectSlowResume(ctx, t, s)
	leaveRoleFree(ctx, t, c)
	l := c.Listen(qmpclient.ListenOptions{})
	got := make(chan error, 1)
	go func() {
		_, err := l.Next(ctx)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Next start reading
	l.Close()
	select {
	case err := <-got:
		require.ErrorIs(t, err, qmpclient.ErrListenerClosed)
	case <-ctx.Done():
		t.Fatal("Next still reading after Close")
	}
	// The session still works: the interrupted read lost nothing.
	_, err := c.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
}
