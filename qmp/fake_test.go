package qmp

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/ws"
)

// fakeQEMU serves QMP on a unix socket with a ServerMachine, one connection
// at a time, answering commands with handle (which runs on the connection's
// goroutine and may queue replies and events through the machine).
type fakeQEMU struct {
	addr   string
	ln     net.Listener
	handle func(s *ServerMachine, cmd Command)
	wg     sync.WaitGroup

	mu   sync.Mutex
	conn net.Conn
}

func newFakeQEMU(t testing.TB, handle func(s *ServerMachine, cmd Command)) *fakeQEMU {
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	return serveFakeQEMU(t, ln, "unix:"+path, handle)
}

// serveFakeQEMU serves on ln, which clients reach at addr.
func serveFakeQEMU(t testing.TB, ln net.Listener, addr string, handle func(s *ServerMachine, cmd Command)) *fakeQEMU {
	f := &fakeQEMU{addr: addr, ln: ln, handle: handle}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *fakeQEMU) serve() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conn = nc
		f.mu.Unlock()
		f.run(nc)
		nc.Close()
	}
}

// run drives one connection: read, feed, answer, write.
func (f *fakeQEMU) run(nc net.Conn) {
	s := NewServerMachine(ServerConfig{})
	buf := make([]byte, 64<<10)
	flush := func() bool {
		for a := s.Next(); a.Kind != action.WantMore; a = s.Next() {
			switch a.Kind {
			case action.Send:
				if _, err := nc.Write(a.Bytes); err != nil {
					return false
				}
			case action.Deliver:
				f.handle(s, a.Value)
			case action.Error:
				return false
			}
		}
		return true
	}
	for flush() {
		n, err := nc.Read(buf)
		if err != nil {
			return
		}
		s.Feed(buf[:n])
	}
}

// dropConnection closes the current connection from the server side.
func (f *fakeQEMU) dropConnection() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
	}
}

func (f *fakeQEMU) close() {
	f.ln.Close()
	f.dropConnection()
	f.wg.Wait()
}

// echo answers every command with its arguments, and "emit" with events
// named by its arguments' "events" list.
func echo(s *ServerMachine, cmd Command) {
	_ = s.Return(cmd.ID, cmd.Arguments)
}

func TestDrivenClientListeners(t *testing.T) {
	f := newFakeQEMU(t, func(s *ServerMachine, cmd Command) {
		if cmd.Name == "emit" {
			for i := range 5 {
				_, _ = s.SendEvent("TICK", []byte(`{"n": `+string(rune('0'+i))+`}`), time.Unix(int64(i), 0))
				_, _ = s.SendEvent("TOCK", nil, time.Unix(int64(i), 0))
			}
		}
		_ = s.Return(cmd.ID, nil)
	})
	c := connectClient(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	all := c.Listen(ListenOptions{})
	ticks := c.Listen(ListenOptions{Names: []string{"TICK"}, Queue: 2})
	odd := c.Listen(ListenOptions{Filter: func(ev Event) bool { return ev.Name == "TICK" && ev.Timestamp.Unix()%2 == 1 }})
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
	for _, want := range []int64{3, 4} {
		ev, err := ticks.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, ev.Timestamp.Unix())
	}
	require.Equal(t, uint64(3), ticks.Dropped())

	for _, want := range []int64{1, 3} {
		ev, err := odd.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, want, ev.Timestamp.Unix())
	}

	// Closed listeners say so; others end with the session.
	ticks.Close()
	_, err = ticks.Next(ctx)
	require.ErrorIs(t, err, ErrListenerClosed)
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	_, err = odd.Next(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, c.Disconnect(ctx))
	_, err = odd.Next(ctx)
	require.ErrorIs(t, err, ErrDisconnected)
}

func TestDrivenClientWaitEvent(t *testing.T) {
	f := newFakeQEMU(t, func(s *ServerMachine, cmd Command) {
		_ = s.Return(cmd.ID, nil)
		_, _ = s.SendEvent("DONE", cmd.Arguments, time.Unix(1, 0))
	})
	c := connectClient(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		ev  Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		ev, err := c.WaitEvent(ctx, "DONE", func(ev Event) bool { return string(ev.Data) == `{"job":2}` })
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

func TestDrivenClientDisconnectFailsPending(t *testing.T) {
	hold := make(chan struct{})
	f := newFakeQEMU(t, func(s *ServerMachine, cmd Command) {
		if cmd.Name == "hang" {
			close(hold) // never answered
			return
		}
		_ = s.Return(cmd.ID, nil)
	})
	c := connectClient(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "hang", nil)
		errc <- err
	}()
	<-hold
	f.dropConnection()
	err := <-errc
	require.ErrorIs(t, err, ErrDisconnected)
	require.ErrorIs(t, err, transport.ErrPeerClosed, "wraps the root cause")
	require.Error(t, c.Disconnect(ctx))
	require.Equal(t, "idle", c.State().String())

	// Executing while not connected is ErrDisconnected too.
	_, err = c.Execute(ctx, "x", nil)
	require.ErrorIs(t, err, ErrDisconnected)
}

func TestDrivenClientCancelledExecuteDropsLateReply(t *testing.T) {
	release := make(chan struct{})
	var late Command
	var sm *ServerMachine
	f := newFakeQEMU(t, func(s *ServerMachine, cmd Command) {
		if cmd.Name == "slow" {
			late, sm = cmd, s
			close(release)
			return
		}
		if cmd.Name == "flush-late" {
			_ = sm.Return(late.ID, []byte(`{"late": true}`))
		}
		_ = s.Return(cmd.ID, cmd.Arguments)
	})
	c := connectClient(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slowCtx, slowCancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(slowCtx, "slow", nil)
		errc <- err
	}()
	<-release
	slowCancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	got, err := c.Execute(ctx, "flush-late", []byte(`{"mine": 1}`))
	require.NoError(t, err)
	require.Equal(t, `{"mine": 1}`, string(got), "the late reply went nowhere")
	var dropped uint64
	require.NoError(t, c.sess.Do(ctx, func(m *ClientMachine) error { dropped = m.Dropped(); return nil }))
	require.Equal(t, uint64(1), dropped)
}

func BenchmarkDrivenClientExecute(b *testing.B) {
	f := newFakeQEMU(b, echo)
	c := NewClient(Config{})
	ctx := context.Background()
	require.NoError(b, c.Connect(ctx, f.addr))
	defer c.Disconnect(ctx)
	args := []byte(`{"id": "net0"}`)
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Execute(ctx, "device_del", args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("8 goroutines", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4) // 2 CPUs × 4
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Execute(ctx, "device_del", args); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func TestDrivenClientStaleReplyAfterReconnect(t *testing.T) {
	// QEMU sends the reply to a command still running when its client left
	// to the next client. Ids keep counting across connections, so the new
	// connection does not mistake it for the reply to one of its commands.
	var staleID []byte
	started := make(chan struct{}, 1)
	f := newFakeQEMU(t, func(s *ServerMachine, cmd Command) {
		switch cmd.Name {
		case "slow":
			staleID = append([]byte(nil), cmd.ID...)
			started <- struct{}{}
			return // answered on the next connection
		case "query-status":
			if staleID != nil {
				_ = s.Return(staleID, []byte(`{"stale": true}`))
			}
		}
		_ = s.Return(cmd.ID, []byte(`{"fresh": true}`))
	})
	c := connectClient(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "slow", nil)
		errc <- err
	}()
	<-started
	require.NoError(t, c.Disconnect(ctx))
	require.ErrorIs(t, <-errc, ErrDisconnected)

	require.NoError(t, c.Connect(ctx, f.addr))
	for range 3 {
		got, err := c.Execute(ctx, "query-status", nil)
		require.NoError(t, err)
		require.Equal(t, `{"fresh": true}`, string(got))
	}
	var dropped uint64
	require.NoError(t, c.sess.Do(ctx, func(m *ClientMachine) error { dropped = m.Dropped(); return nil }))
	require.Equal(t, uint64(3), dropped, "every stale reply was dropped")
}

func TestDrivenClientOverWebSocket(t *testing.T) {
	// QEMU's own websocket chardev never answers a command; QMP over
	// WebSocket is served by our own servers.
	ln, err := ws.Endpoint{URL: "ws://127.0.0.1:0/qmp"}.ListenWS(context.Background())
	require.NoError(t, err)
	f := serveFakeQEMU(t, ln, ln.URL(), echo)
	c := connectClient(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				args := fmt.Sprintf(`{"g": %d, "i": %d}`, g, i)
				got, err := c.Execute(ctx, "echo", []byte(args))
				if !assert.NoError(t, err) || !assert.Equal(t, args, string(got)) {
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, c.Disconnect(ctx))
}
