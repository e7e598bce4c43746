package qmp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/jsonstream"
)

// startQEMU runs QEMU with a QMP unix socket and returns a connection to it.
// It skips the test when QEMU is missing, unless WIREREACTOR_REQUIRE_PEERS=1.
func startQEMU(t *testing.T, extra ...string) net.Conn {
	return startQEMUWith(t, false, extra...)
}

// startQEMUWith is startQEMU, with pretty-printed QMP output when pretty is
// set (each message then spans many lines).
func startQEMUWith(t *testing.T, pretty bool, extra ...string) net.Conn {
	t.Helper()
	bin := testpeers.QEMUBinary(t)
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	args := []string{"-machine", "none", "-nodefaults", "-display", "none"}
	if pretty {
		args = append(args, "-chardev", "socket,id=qmp0,path="+sock+",server=on,wait=off",
			"-mon", "chardev=qmp0,mode=control,pretty=on")
	} else {
		args = append(args, "-qmp", "unix:"+sock+",server=on,wait=off")
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
	}
	require.NoError(t, err, "connecting to QEMU")
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	return conn
}

// readMessage reads one JSON message from QEMU.
func readMessage(t *testing.T, conn net.Conn, d *jsonstream.Decoder, buf []byte) string {
	t.Helper()
	for {
		v, err := d.Next()
		require.NoError(t, err)
		if v != nil {
			return string(v)
		}
		n, err := conn.Read(buf)
		require.NoError(t, err)
		d.Feed(buf[:n])
	}
}

func TestServerMatchesQEMU(t *testing.T) {
	conn := startQEMU(t)
	var d jsonstream.Decoder
	buf := make([]byte, 64<<10)
	greeting := readMessage(t, conn, &d, buf)

	// Our greeting, given QEMU's version and capabilities, is byte-identical.
	g, err := ParseGreeting([]byte(greeting))
	require.NoError(t, err)
	s := NewServerMachine(ServerMachineConfig{Version: g.Version, Capabilities: g.Capabilities})
	ours, _, err := drain[Command](t, s)
	require.NoError(t, err)
	require.Equal(t, greeting+"\r\n", string(ours))

	for _, tc := range protocolCases {
		if tc.want == "" {
			continue
		}
		_, err := conn.Write([]byte(tc.in))
		require.NoError(t, err)
		require.Equal(t, tc.want, readMessage(t, conn, &d, buf), "QEMU's answer to %s", tc.in)
	}
}

// driveQEMU runs the client machine against QEMU until want deliveries have
// arrived (after the handshake), executing exec on Ready.
func driveQEMU(t *testing.T, conn net.Conn, c *ClientMachine, want int, onReady func()) []Received {
	t.Helper()
	buf := make([]byte, 64<<10)
	var got []Received
	for {
		a := c.Next()
		switch a.Kind {
		case action.KindSend:
			_, err := conn.Write(a.Bytes)
			require.NoError(t, err)
		case action.KindDeliver:
			if a.Value.Kind == ReceivedKindReady && onReady != nil {
				onReady()
			}
			if a.Value.Kind != ReceivedKindGreeting && a.Value.Kind != ReceivedKindReady {
				got = append(got, a.Value)
			}
		case action.KindError:
			t.Fatalf("client machine failed: %v", a.Err)
		case action.KindWantMore:
			if len(got) >= want {
				return got
			}
			n, err := conn.Read(buf)
			require.NoError(t, err)
			c.Feed(buf[:n])
		}
	}
}

func TestClientAgainstQEMU(t *testing.T) {
	conn := startQEMU(t)
	c := NewClientMachine(ClientMachineConfig{})
	var status, stop, schema, bad, oob uint64
	got := driveQEMU(t, conn, c, 6, func() {
		var err error
		status, err = c.Execute("query-status", nil)
		require.NoError(t, err)
		stop, _ = c.Execute("stop", nil)
		schema, _ = c.Execute("query-qmp-schema", nil)
		bad, _ = c.Execute("query-name", []byte(`{"x": 1}`))
		oob, err = c.ExecuteOOB("migrate-pause", nil)
		require.NoError(t, err)
	})
	require.True(t, c.OOBEnabled())
	byID := map[uint64]Received{}
	var events []string
	for _, r := range got {
		if r.Kind == ReceivedKindEvent {
			events = append(events, r.Event.Name)
			require.WithinDuration(t, time.Now(), r.Event.Timestamp, time.Minute)
			continue
		}
		require.Equal(t, ReceivedKindReply, r.Kind)
		byID[r.ID] = r
	}
	require.Equal(t, []string{"STOP"}, events)
	require.JSONEq(t, `{"status": "running", "singlestep": false, "running": true}`, string(byID[status].Response.Return))
	require.Equal(t, "{}", string(byID[stop].Response.Return))
	require.Greater(t, len(byID[schema].Response.Raw), 150_000, "the whole query-qmp-schema reply, one message")
	var entries []map[string]any
	require.NoError(t, json.Unmarshal(byID[schema].Response.Return, &entries))
	require.NotEmpty(t, entries)
	require.Equal(t, &ErrorInfo{Class: "GenericError", Desc: "Parameter 'x' is unexpected"}, byID[bad].Response.Error)
	require.Equal(t, "GenericError", byID[oob].Response.Error.Class)
	require.Zero(t, c.Pending())
	require.Zero(t, c.Dropped())
}

func TestClientIDLessErrorFromQEMU(t *testing.T) {
	// QEMU answers input it cannot parse with an error without id. Send a
	// broken command behind the machine's back while one command is in
	// flight: the error is attributed to it.
	conn := startQEMU(t)
	c := NewClientMachine(ClientMachineConfig{})
	var id uint64
	got := driveQEMU(t, conn, c, 1, func() {
		var err error
		id, err = c.Execute("query-status", nil)
		require.NoError(t, err)
		// The machine has not sent it yet; garbage goes first.
		_, err = conn.Write([]byte("junk "))
		require.NoError(t, err)
	})
	require.Len(t, got, 1)
	require.Equal(t, ReceivedKindReply, got[0].Kind)
	require.Equal(t, id, got[0].ID)
	require.Nil(t, got[0].Response.ID)
	require.Equal(t, "GenericError", got[0].Response.Error.Class)
	require.Contains(t, got[0].Response.Error.Desc, "JSON parse error")
	// QEMU then runs the command itself; its reply carries the id that the
	// machine no longer waits for, so it is dropped and counted.
	_, err := c.Execute("query-name", nil)
	require.NoError(t, err)
	got = driveQEMU(t, conn, c, 1, nil)
	require.Equal(t, ReceivedKindReply, got[0].Kind)
	require.Equal(t, uint64(1), c.Dropped())
	require.True(t, bytes.Contains(got[0].Response.Raw, []byte(fmt.Sprint(id+1))))
}

func TestClientAgainstPrettyQEMU(t *testing.T) {
	conn := startQEMUWith(t, true)
	c := NewClientMachine(ClientMachineConfig{})
	var id uint64
	got := driveQEMU(t, conn, c, 1, func() {
		id, _ = c.Execute("query-version", nil)
	})
	require.Len(t, got, 1)
	require.Equal(t, id, got[0].ID)
	require.Contains(t, string(got[0].Response.Raw), "\n", "pretty output spans lines")
	var v Version
	require.NoError(t, json.Unmarshal(got[0].Response.Return, &v))
	require.Equal(t, c.Greeting().Version, v)
}
