package qmptest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
	"github.com/wirereactor/wirereactor/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, addr string) *qmpclient.Client {
	t.Helper()
	c := qmpclient.NewClient(qmpclient.Config{Name: t.Name()})
	require.NoError(t, c.Connect(testCtx(t), addr))
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// rawConn is a line-oriented client that sees exactly what the server
// writes.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, s *qmptest.Server, negotiate bool) *rawConn {
	t.Helper()
	nc, err := net.Dial("unix", strings.TrimPrefix(s.Addr(), "unix:"))
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<20)}
	require.Contains(t, rc.line(), `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}`)
	if negotiate {
		require.Equal(t, `{"return": {}, "id": 0}`, rc.exec(`{"execute": "qmp_capabilities", "id": 0}`))
	}
	return rc
}

func (rc *rawConn) line() string {
	rc.t.Helper()
	require.NoError(rc.t, rc.nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	l, err := rc.r.ReadString('\n')
	require.NoError(rc.t, err)
	return strings.TrimSuffix(l, "\r\n")
}

// exec sends msg and returns the next line.
func (rc *rawConn) exec(msg string) string {
	rc.t.Helper()
	_, err := rc.nc.Write([]byte(msg + "\n"))
	require.NoError(rc.t, err)
	return rc.line()
}

// withoutTimestamp blanks an event's timestamp.
func withoutTimestamp(line string) string {
	if i := strings.Index(line, `"event"`); strings.HasPrefix(line, `{"timestamp"`) && i > 0 {
		return "{" + line[i:]
	}
	return line
}

func TestDefaultCommandsAnswerAsQEMU(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{Name: "vm1"})
	rc := dialRaw(t, s, true)
	// Each step: the command sent, then every line expected back (events
	// without their timestamps), as QEMU 7.2 writes them.
	steps := []struct {
		send string
		want []string
	}{
		{`{"execute": "query-status", "id": 1}`, []string{`{"return": {"status": "running", "singlestep": false, "running": true}, "id": 1}`}},
		{`{"execute": "stop", "id": 2}`, []string{`{"event": "STOP"}`, `{"return": {}, "id": 2}`}},
		{`{"execute": "stop", "id": 3}`, []string{`{"return": {}, "id": 3}`}},
		{`{"execute": "query-status", "id": 4}`, []string{`{"return": {"status": "paused", "singlestep": false, "running": false}, "id": 4}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}, "id": 5}`, []string{`{"return": "VM status: paused\r\n", "id": 5}`}},
		{`{"execute": "cont", "id": "x"}`, []string{`{"event": "RESUME"}`, `{"return": {}, "id": "x"}`}},
		{`{"execute": "cont", "id": 6}`, []string{`{"return": {}, "id": 6}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "stop"}, "id": 7}`, []string{`{"event": "STOP"}`, `{"return": "", "id": 7}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "c"}, "id": 8}`, []string{`{"event": "RESUME"}`, `{"return": "", "id": 8}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}, "id": 9}`, []string{`{"return": "VM status: running\r\n", "id": 9}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "info version"}, "id": 10}`, []string{`{"return": "7.2.0wirereactor\r\n", "id": 10}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "info name"}, "id": 11}`, []string{`{"return": "vm1\r\n", "id": 11}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": "foo bar"}, "id": 12}`, []string{`{"return": "unknown command: 'foo'\r\n", "id": 12}`}},
		{`{"execute": "human-monitor-command", "id": 13}`, []string{`{"id": 13, "error": {"class": "GenericError", "desc": "Parameter 'command-line' is missing"}}`}},
		{`{"execute": "human-monitor-command", "arguments": {"command-line": 1}, "id": 14}`, []string{`{"id": 14, "error": {"class": "GenericError", "desc": "Invalid parameter type for 'command-line', expected: string"}}`}},
		{`{"execute": "query-version", "id": 15}`, []string{`{"return": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "wirereactor"}, "id": 15}`}},
		{`{"execute": "query-name", "id": 16}`, []string{`{"return": {"name": "vm1"}, "id": 16}`}},
		{`{"execute": "query-name", "arguments": {"x": 1}, "id": 17}`, []string{`{"id": 17, "error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}`}},
		{`{"execute": "no-such-command", "id": 18}`, []string{`{"id": 18, "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}}`}},
		{`{"execute": "getfd", "arguments": {"fdname": "fd0"}, "id": 19}`, []string{`{"id": 19, "error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}}`}},
		{`{"execute": "closefd", "arguments": {"fdname": "fd0"}, "id": 20}`, []string{`{"id": 20, "error": {"class": "GenericError", "desc": "File descriptor named 'fd0' not found"}}`}},
		{`{"execute": "query-fdsets", "id": 21}`, []string{`{"return": [], "id": 21}`}},
		{`{"execute": "system_powerdown", "id": 22}`, []string{`{"event": "POWERDOWN"}`, `{"return": {}, "id": 22}`}},
		{`{"execute": "qmp_capabilities", "id": 23}`, []string{`{"id": 23, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}`}},
		{`{"execute": "quit", "id": 24}`, []string{`{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`, `{"return": {}, "id": 24}`}},
	}
	for _, st := range steps {
		got := []string{withoutTimestamp(rc.exec(st.send))}
		for len(got) < len(st.want) {
			got = append(got, withoutTimestamp(rc.line()))
		}
		require.Equal(t, st.want, got, st.send)
	}
	// quit closes the connection after the reply.
	_, err := rc.r.ReadString('\n')
	require.ErrorIs(t, err, io.EOF, "connection closed after quit")
}

func TestHandlersAndErrors(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	s.Handle("echo", qmptest.Echo)
	s.Handle("typed", func(ctx context.Context, args json.RawMessage) (any, error) {
		var in struct{ N int }
		if err := json.Unmarshal(args, &in); err != nil {
			return nil, err
		}
		return struct {
			Double int `json:"double"`
		}{2 * in.N}, nil
	})
	s.Handle("fail", qmptest.Fail("DeviceNotFound", "Device 'net0' not found"))
	s.Handle("plain-error", func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("it broke") })
	s.Handle("bad-result", qmptest.Reply(json.RawMessage(`{nope`)))
	s.Handle("removed", qmptest.Echo)
	s.Handle("removed", nil)
	s.Handle("stop", qmptest.Reply("overridden"))
	c := connect(t, s.Addr())
	ctx := testCtx(t)

	tests := []struct {
		cmd       string
		args      any
		want      string
		wantClass string
		wantDesc  string
	}{
		{cmd: "echo", args: map[string]int{"a": 1}, want: `{"a":1}`},
		{cmd: "echo", want: `{}`},
		{cmd: "typed", args: map[string]int{"n": 21}, want: `{"double":42}`},
		{cmd: "stop", want: `"overridden"`},
		{cmd: "fail", wantClass: "DeviceNotFound", wantDesc: "Device 'net0' not found"},
		{cmd: "plain-error", wantClass: "GenericError", wantDesc: "it broke"},
		{cmd: "bad-result", wantClass: "GenericError", wantDesc: "qmptest: result is not valid JSON"},
		{cmd: "removed", wantClass: "CommandNotFound", wantDesc: "The command removed has not been found"},
	}
	for _, tt := range tests {
		got, err := c.Execute(ctx, tt.cmd, tt.args)
		if tt.wantClass != "" {
			var ee *qmpclient.ExecuteError
			require.ErrorAs(t, err, &ee, tt.cmd)
			require.Equal(t, qmp.ErrorInfo{Class: tt.wantClass, Desc: tt.wantDesc}, ee.Info, tt.cmd)
			continue
		}
		require.NoError(t, err, tt.cmd)
		require.JSONEq(t, tt.want, string(got), tt.cmd)
	}

	var cmds []struct{ Name string }
	require.NoError(t, c.ExecuteInto(ctx, "query-commands", nil, &cmds))
	var names []string
	for _, n := range cmds {
		names = append(names, n.Name)
	}
	require.Subset(t, names, []string{"echo", "typed", "query-status", "quit", "qmp_capabilities", "getfd"})
	require.NotContains(t, names, "removed")
	require.Equal(t, len(s.Commands())+1, len(names))
}

func TestEventsBeforeAndAfterTheReply(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{Now: func() time.Time { return time.Unix(1700000000, 123456000) }})
	s.Handle("job", func(ctx context.Context, args json.RawMessage) (any, error) {
		require.NoError(t, qmptest.Emit(ctx, "JOB_STARTED", map[string]string{"id": "j1"}))
		require.NoError(t, qmptest.EmitAfter(ctx, "JOB_DONE", nil))
		return nil, nil
	})
	rc := dialRaw(t, s, true)
	require.Equal(t, `{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "JOB_STARTED", "data": {"id":"j1"}}`,
		rc.exec(`{"execute": "job", "id": 1}`))
	require.Equal(t, `{"return": {}, "id": 1}`, rc.line())
	require.Equal(t, `{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "JOB_DONE"}`, rc.line())

	// Server.Emit from outside a handler.
	require.NoError(t, s.Emit("TICK", json.RawMessage(`{"n": 1}`)))
	require.Equal(t, `{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "TICK", "data": {"n": 1}}`, rc.line())
	require.Error(t, s.Emit("BAD", json.RawMessage(`{`)))
	require.Error(t, qmptest.Emit(context.Background(), "X", nil), "not in a handler")
}

func TestFaultInjection(t *testing.T) {
	tests := []struct {
		name    string
		handler qmptest.HandlerFunc
		cfg     qmp.ClientMachineConfig
		check   func(t *testing.T, err error)
	}{
		{"drop mid-command", qmptest.Drop, qmp.ClientMachineConfig{}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, qmpclient.ErrDisconnected)
			require.ErrorIs(t, err, io.EOF, "the root cause is the closed stream")
		}},
		{"garbage", qmptest.Garbage([]byte("}}} not json\r\n")), qmp.ClientMachineConfig{}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, qmpclient.ErrDisconnected)
			require.ErrorContains(t, err, "json syntax error")
		}},
		{"a message that is not QMP", qmptest.Garbage([]byte(`{"hello": 1}` + "\r\n")), qmp.ClientMachineConfig{}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, qmp.ErrProtocol)
		}},
		{"huge reply over the client's limit", qmptest.Huge(2 << 20), qmp.ClientMachineConfig{MaxMessageSize: 1 << 20}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, qmpclient.ErrDisconnected)
			require.ErrorContains(t, err, "1048576")
		}},
		{"half a message, then the end", func(ctx context.Context, _ json.RawMessage) (any, error) {
			require.NoError(t, qmptest.WriteRaw(ctx, []byte(`{"return": {}, "i`)))
			return nil, qmptest.ErrDropConnection
		}, qmp.ClientMachineConfig{}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, qmpclient.ErrDisconnected)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := qmptest.StartUnix(t, qmptest.Config{})
			s.Handle("fault", tt.handler)
			c := qmpclient.NewClient(qmpclient.Config{Machine: tt.cfg})
			ctx := testCtx(t)
			require.NoError(t, c.Connect(ctx, s.Addr()))
			_, err := c.Execute(ctx, "fault", nil)
			tt.check(t, err)
			require.Error(t, c.Disconnect(ctx), "the session broke")

			// The server goes on serving the next client.
			require.NoError(t, c.Connect(ctx, s.Addr()))
			_, err = c.Execute(ctx, "query-status", nil)
			require.NoError(t, err)
			require.NoError(t, c.Disconnect(ctx))
		})
	}
}

func TestHugeReplyWithinTheLimit(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{SchemaSize: 300_000})
	s.Handle("huge", qmptest.Huge(3<<20))
	c := connect(t, s.Addr())
	ctx := testCtx(t)
	got, err := c.Execute(ctx, "huge", nil)
	require.NoError(t, err)
	require.Len(t, got, 3<<20+2)

	schema, err := c.Execute(ctx, "query-qmp-schema", nil)
	require.NoError(t, err)
	require.InDelta(t, 300_000, len(schema), 1000)
	var entries []struct {
		Name     string `json:"name"`
		MetaType string `json:"meta-type"`
	}
	require.NoError(t, json.Unmarshal(schema, &entries))
	require.Contains(t, entries, struct {
		Name     string `json:"name"`
		MetaType string `json:"meta-type"`
	}{"query-status", "command"})
}

func TestSlowAndHangingCommands(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	s.Handle("slow", qmptest.Slow(50*time.Millisecond, qmptest.Reply("late")))
	s.Handle("hang", qmptest.Hang)
	c := connect(t, s.Addr())
	ctx := testCtx(t)

	got, err := c.Execute(ctx, "slow", nil)
	require.NoError(t, err)
	require.Equal(t, `"late"`, string(got))

	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err = c.Execute(short, "hang", nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The connection still works; commands run in order after the hang.
	_, err = c.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
}

// A reply to a command still running when its client left goes to the next
// client, as QEMU does; qmpclient.Client recognises it as stale and drops it.
// leaveDuringSlowCommand starts a server whose "slow" command replies
// "stale" once its client has gone, and a qmpclient.Client that runs slow and
// disconnects while it runs. It returns the server, the client and slow's
// Execute error.
func leaveDuringSlowCommand(t *testing.T, ctx context.Context) (*qmptest.Server, *qmpclient.Client, <-chan error) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	started := make(chan struct{})
	s.Handle("slow", func(ctx context.Context, _ json.RawMessage) (any, error) {
		close(started)
		return "stale", qmptest.WaitClientGone(ctx)
	})
	c := qmpclient.NewClient(qmpclient.Config{})
	require.NoError(t, c.Connect(ctx, s.Addr()))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(ctx, "slow", nil)
		errc <- err
	}()
	<-started
	require.NoError(t, c.Disconnect(ctx))
	return s, c, errc
}

func TestStaleReplyGoesToTheNextClient(t *testing.T) {
	s, _, errc := leaveDuringSlowCommand(t, testCtx(t))
	require.ErrorIs(t, <-errc, qmpclient.ErrDisconnected)

	// A raw client sees the stale reply (with the old id) before its own.
	rc := dialRaw(t, s, true)
	require.Equal(t, `{"return": "stale", "id": 2}`, rc.exec(`{"execute": "query-name", "id": "mine"}`))
	require.Equal(t, `{"return": {}, "id": "mine"}`, rc.line())
}

func TestStaleReplyIsDroppedByTheClient(t *testing.T) {
	ctx := testCtx(t)
	s, c, _ := leaveDuringSlowCommand(t, ctx)

	require.NoError(t, c.Connect(ctx, s.Addr()))
	defer c.Disconnect(ctx)
	got, err := c.Execute(ctx, "query-name", nil)
	require.NoError(t, err)
	require.Equal(t, `{}`, string(got))
	var dropped uint64
	require.NoError(t, c.Session().Do(ctx, func(m *qmp.ClientMachine) error { dropped = m.Dropped(); return nil }))
	require.Equal(t, uint64(1), dropped)
}

func TestOneClientAtATime(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	ctx := testCtx(t)
	first := connect(t, s.Addr())

	second := qmpclient.NewClient(qmpclient.Config{})
	connected := make(chan error, 1)
	go func() { connected <- second.Connect(ctx, s.Addr()) }()
	select {
	case err := <-connected:
		t.Fatalf("second client connected while the first was served: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.Equal(t, 1, s.Connections())
	require.NoError(t, first.Disconnect(ctx))
	require.NoError(t, <-connected, "the second client is served once the first left")
	_, err := second.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
	require.NoError(t, second.Disconnect(ctx))
	require.Equal(t, 2, s.Served())
}

func TestMultiClientBroadcastsEvents(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{MultiClient: true})
	ctx := testCtx(t)
	var clients []*qmpclient.Client
	var listeners []*qmpclient.Listener
	for range 3 {
		c := connect(t, s.Addr())
		clients = append(clients, c)
		listeners = append(listeners, c.Listen(qmpclient.ListenOptions{Names: []string{"STOP"}}))
	}
	require.Equal(t, 3, s.Connections())
	_, err := clients[1].Execute(ctx, "stop", nil)
	require.NoError(t, err)
	for _, l := range listeners {
		ev, err := l.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, "STOP", ev.Name)
	}
	var status struct{ Status string }
	require.NoError(t, clients[2].ExecuteInto(ctx, "query-status", nil, &status))
	require.Equal(t, "paused", status.Status, "one VM, whoever asks")

	s.DropConnections()
	for _, c := range clients {
		require.NoError(t, c.Session().WaitState(ctx, transport.RunstateDisconnecting))
	}
}

func TestCloseJoinsEverything(t *testing.T) {
	// goleak (TestMain) checks nothing outlives Close, with clients
	// connected and a handler blocked.
	s := qmptest.NewServer(qmptest.Config{MultiClient: true})
	started := make(chan struct{}, 2)
	s.Handle("block", func(ctx context.Context, _ json.RawMessage) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx := testCtx(t)
	require.NoError(t, s.Start(ctx, "tcp:127.0.0.1:0"))
	require.True(t, strings.HasPrefix(s.Addr(), "tcp:127.0.0.1:"), s.Addr())
	var errs []chan error
	for range 2 {
		c := connect(t, s.Addr())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Execute(ctx, "block", nil)
			errc <- err
		}()
		errs = append(errs, errc)
		<-started
	}
	require.NoError(t, s.Close())
	for _, errc := range errs {
		require.ErrorIs(t, <-errc, qmpclient.ErrDisconnected)
	}
	require.ErrorIs(t, s.Start(ctx, "tcp:127.0.0.1:0"), qmptest.ErrServerClosed)
	require.NoError(t, s.Close(), "idempotent")
}

func TestServeConnOverAPipe(t *testing.T) {
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	client, server := net.Pipe()
	require.NoError(t, s.ServeConn(server))
	c := qmpclient.NewClient(qmpclient.Config{})
	ctx := testCtx(t)
	require.NoError(t, c.ConnectDialer(ctx, transport.DialFunc(func(context.Context) (net.Conn, error) { return client, nil })))
	got, err := c.Execute(ctx, "query-status", nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"status": "running", "singlestep": false, "running": true}`, string(got))
	require.NoError(t, c.Disconnect(ctx))
}

func TestFilesPassedOverUnix(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	c := connect(t, s.Addr())
	ctx := testCtx(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()

	_, err = c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "fd0"}, w)
	require.NoError(t, err)
	got := s.FD("fd0")
	require.NotNil(t, got)
	// The server holds a duplicate of our pipe's write end.
	_, err = got.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(r, buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf))
	_, err = c.Execute(ctx, "closefd", map[string]string{"fdname": "fd0"})
	require.NoError(t, err)
	require.Nil(t, s.FD("fd0"))

	var added struct {
		FDSetID int `json:"fdset-id"`
		FD      int `json:"fd"`
	}
	raw, err := c.ExecuteWithFiles(ctx, "add-fd", map[string]any{"fdset-id": 7, "opaque": "pipe"}, r)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &added))
	require.Equal(t, 7, added.FDSetID)
	raw, err = c.ExecuteWithFiles(ctx, "add-fd", nil, r)
	require.NoError(t, err)
	var second struct {
		FDSetID int `json:"fdset-id"`
	}
	require.NoError(t, json.Unmarshal(raw, &second))
	require.Equal(t, 0, second.FDSetID, "the lowest unused id")
	var sets []struct {
		FDSetID int `json:"fdset-id"`
		FDs     []struct {
			FD     int    `json:"fd"`
			Opaque string `json:"opaque"`
		} `json:"fds"`
	}
	require.NoError(t, c.ExecuteInto(ctx, "query-fdsets", nil, &sets))
	require.Len(t, sets, 2)
	require.Equal(t, 7, sets[0].FDSetID)
	require.Equal(t, added.FD, sets[0].FDs[0].FD)
	require.Equal(t, "pipe", sets[0].FDs[0].Opaque)
	require.Equal(t, 0, sets[1].FDSetID, "the lowest unused id")

	_, err = c.Execute(ctx, "getfd", map[string]string{"fdname": "fd1"})
	var ee *qmpclient.ExecuteError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "No file descriptor supplied via SCM_RIGHTS", ee.Info.Desc)
}

func TestEmitDropsAClientThatDoesNotRead(t *testing.T) {
	// One client never reads; Emit must neither block on it nor starve
	// the other client, which gets every event.
	s := qmptest.StartUnix(t, qmptest.Config{MultiClient: true, MaxClientBacklog: 64 << 10, EventQueue: 64})
	ctx := testCtx(t)
	deaf := dialRaw(t, s, true)
	c := connect(t, s.Addr())
	l := c.Listen(qmpclient.ListenOptions{Names: []string{"TICK"}, Queue: 1 << 16})
	defer l.Close()
	require.Eventually(t, func() bool { return s.Connections() == 2 }, 10*time.Second, time.Millisecond)

	data := map[string]string{"pad": strings.Repeat("x", 1<<10)}
	const perRound = 32
	done := make(chan int, 1)
	go func() {
		rounds := 0
		for ; rounds < 1000 && s.SlowClientsDropped() == 0; rounds++ {
			for range perRound {
				if err := s.Emit("TICK", data); err != nil {
					panic(err)
				}
			}
			// Paced by the reading client, so only the deaf one lags.
			for range perRound {
				if _, err := l.Next(ctx); err != nil {
					panic(err)
				}
			}
		}
		done <- rounds
	}()
	var rounds int
	select {
	case rounds = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Emit blocked on the client that does not read")
	}
	require.Equal(t, 1, s.SlowClientsDropped())
	require.Less(t, rounds, 1000)
	require.Zero(t, l.Dropped(), "the reading client got every event")
	_, err := c.Execute(ctx, "query-status", nil)
	require.NoError(t, err, "the reading client is still served")
	// The slow client is closed off Emit's path (closing may block), so
	// its connection goes away shortly after the count.
	require.Eventually(t, func() bool { return s.Connections() == 1 }, 10*time.Second, time.Millisecond)

	// The deaf client's connection was closed: it reads what was sent,
	// then the end.
	require.NoError(t, deaf.nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, deaf.r)
	require.NoError(t, err)
}

func TestHalfCloseAnswersEveryCommand(t *testing.T) {
	// A client that sends its commands and half-closes (nc -N) gets every
	// answer, then the end of stream; a partial command at the end is
	// dropped silently. QEMU does the same without oob
	// (TestQEMUAnswersEveryCommandBeforeHalfClose in package qmp).
	s := qmptest.StartUnix(t, qmptest.Config{})
	const n = 50
	for _, caps := range []string{
		`{"execute": "qmp_capabilities"}`,
		`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}`,
	} {
		for range 5 {
			nc, err := net.Dial("unix", strings.TrimPrefix(s.Addr(), "unix:"))
			require.NoError(t, err)
			var b strings.Builder
			b.WriteString(caps)
			for i := range n {
				b.WriteString(`{"execute": "query-status", "id": ` + strconv.Itoa(i+1) + `}`)
			}
			b.WriteString(`{"execute": "query-sta`)
			_, err = nc.Write([]byte(b.String()))
			require.NoError(t, err)
			require.NoError(t, nc.(*net.UnixConn).CloseWrite())
			require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
			out, err := io.ReadAll(nc)
			require.NoError(t, err)
			nc.Close()
			require.Equal(t, 1+n, strings.Count(string(out), `"return"`), string(out))
			require.Contains(t, string(out), `"id": 50}`)
			require.NotContains(t, string(out), `"error"`)
		}
	}
}

func TestEmitKeepsAClientBusyWithABigReply(t *testing.T) {
	// A reply larger than the backlog limit is not falling behind: events
	// emitted meanwhile wait in the client's queue and all arrive.
	s := qmptest.StartUnix(t, qmptest.Config{MaxClientBacklog: 16 << 10})
	ctx := testCtx(t)
	c := connect(t, s.Addr())
	l := c.Listen(qmpclient.ListenOptions{Names: []string{"TICK"}, Queue: 1 << 10})
	defer l.Close()
	const n = 200
	for range 5 {
		done := make(chan error, 1)
		go func() {
			_, err := c.Execute(ctx, "query-qmp-schema", nil)
			done <- err
		}()
		for i := range n {
			require.NoError(t, s.Emit("TICK", map[string]int{"i": i}))
		}
		require.NoError(t, <-done)
		for range n {
			_, err := l.Next(ctx)
			require.NoError(t, err)
		}
	}
	require.Zero(t, s.SlowClientsDropped())
	require.Zero(t, l.Dropped())
}
