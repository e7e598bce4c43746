package transcript_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/internal/testpeers"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
)

// unplugDisk is a user's automation: remove the disk device id and wait
// until QEMU confirms with DEVICE_DELETED for it.
func unplugDisk(ctx context.Context, c *qmpclient.Client, id string) error {
	deleted := c.Listen(qmpclient.ListenOptions{Names: []string{"DEVICE_DELETED"}})
	defer deleted.Close()
	if _, err := c.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	for {
		ev, err := deleted.Next(ctx)
		if err != nil {
			return err
		}
		var data struct {
			Device string `json:"device"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return err
		}
		if data.Device == id {
			return nil
		}
	}
}

// hotplugFlow plugs a USB disk in (blockdev-add, device_add), checks it is
// there, and unplugs it with unplugDisk.
func hotplugFlow(ctx context.Context, c *qmpclient.Client) error {
	if _, err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "null-co", "node-name": "disk0", "size": 1 << 20}); err != nil {
		return err
	}
	if _, err := c.Execute(ctx, "device_add", map[string]any{"driver": "usb-storage", "id": "usbdisk0", "drive": "disk0", "bus": "xhci.0"}); err != nil {
		return err
	}
	if _, err := c.Execute(ctx, "device_add", map[string]any{"driver": "usb-storage", "id": "usbdisk0", "drive": "disk0"}); err == nil {
		return errors.New("a second device with the same id was accepted")
	}
	if err := unplugDisk(ctx, c, "usbdisk0"); err != nil {
		return err
	}
	_, err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": "disk0"})
	return err
}

// stopContFlow pauses and resumes the VM with its events, and meets two
// errors on the way: a command QEMU does not know and a bad argument.
func stopContFlow(ctx context.Context, c *qmpclient.Client) error {
	stops := c.Listen(qmpclient.ListenOptions{Names: []string{"STOP", "RESUME"}})
	defer stops.Close()
	var status struct{ Status string }
	for _, step := range []struct{ cmd, event, status string }{{"cont", "RESUME", "running"}, {"stop", "STOP", "paused"}} {
		if _, err := c.Execute(ctx, step.cmd, nil); err != nil {
			return err
		}
		if ev, err := stops.Next(ctx); err != nil || ev.Name != step.event {
			return fmt.Errorf("after %s: event %q, %v", step.cmd, ev.Name, err)
		}
		if err := c.ExecuteInto(ctx, "query-status", nil, &status); err != nil || status.Status != step.status {
			return fmt.Errorf("after %s: status %q, %v", step.cmd, status.Status, err)
		}
	}
	var ee *qmpclient.ExecuteError
	if _, err := c.Execute(ctx, "no-such-command", nil); !errors.As(err, &ee) || ee.Info.Class != "CommandNotFound" {
		return fmt.Errorf("no-such-command: %v", err)
	}
	if _, err := c.Execute(ctx, "query-status", map[string]any{"verbose": true}); !errors.As(err, &ee) || ee.Info.Class != "GenericError" {
		return fmt.Errorf("query-status with a bad argument: %v", err)
	}
	return nil
}

// mirrorFlow runs a block job — a mirror between two null block nodes —
// following it by its JOB_STATUS_CHANGE events until it is ready, completes
// it, and waits until it concluded and was dismissed.
func mirrorFlow(ctx context.Context, c *qmpclient.Client) error {
	jobs := c.Listen(qmpclient.ListenOptions{Names: []string{"JOB_STATUS_CHANGE"}})
	defer jobs.Close()
	for _, node := range []string{"src", "dst"} {
		if _, err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "null-co", "node-name": node, "size": 1 << 20}); err != nil {
			return err
		}
	}
	if _, err := c.Execute(ctx, "blockdev-mirror", map[string]any{"job-id": "job0", "device": "src", "target": "dst", "sync": "full"}); err != nil {
		return err
	}
	wait := func(status string) error {
		for {
			ev, err := jobs.Next(ctx)
			if err != nil {
				return err
			}
			var data struct{ Status string }
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				return err
			}
			if data.Status == status {
				return nil
			}
		}
	}
	if err := wait("ready"); err != nil {
		return err
	}
	if _, err := c.Execute(ctx, "job-complete", map[string]any{"id": "job0"}); err != nil {
		return err
	}
	if err := wait("null"); err != nil {
		return err
	}
	for _, node := range []string{"src", "dst"} {
		if _, err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": node}); err != nil {
			return err
		}
	}
	return nil
}

// schemaFlow asks for the QMP schema (207 KB from QEMU 7.2) and finds
// device_del in it.
func schemaFlow(ctx context.Context, c *qmpclient.Client) error {
	var schema []struct {
		Name     string `json:"name"`
		MetaType string `json:"meta-type"`
	}
	if err := c.ExecuteInto(ctx, "query-qmp-schema", nil, &schema); err != nil {
		return err
	}
	for _, e := range schema {
		if e.Name == "device_del" && e.MetaType == "command" {
			return nil
		}
	}
	return errors.New("device_del is not in the schema")
}

// qemuFlows are the recorded sessions: each transcript in testdata is made
// by running its flow against QEMU 7.2 started with args. (The mirror job
// reaches "ready" before QEMU sends its reply to blockdev-mirror; QEMU runs
// both on its main loop, and the order held over many runs.)
var qemuFlows = []struct {
	transcript string
	args       []string
	flow       func(context.Context, *qmpclient.Client) error
}{
	{"testdata/qemu-7.2-usb-unplug.jsonl", []string{"-device", "qemu-xhci,id=xhci"}, hotplugFlow},
	{"testdata/qemu-7.2-stop-cont.jsonl", nil, stopContFlow},
	{"testdata/qemu-7.2-mirror-job.jsonl", nil, mirrorFlow},
	{"testdata/qemu-7.2-schema.jsonl", nil, schemaFlow},
}

const unplugTranscript = "testdata/qemu-7.2-usb-unplug.jsonl"

// Every recorded QEMU 7.2 session replays to its flow — the unplug
// automation among them — with no QEMU and no socket: the driven qmpclient.Client
// talks to the replaying peer over an in-memory connection.
func TestQEMUTranscriptsReplay(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, f := range qemuFlows {
		t.Run(filepath.Base(f.transcript), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			peer, err := transcript.NewQMPPeer(load(t, filepath.Base(f.transcript)), transcript.PeerConfig{})
			require.NoError(t, err)
			dial, served := transcript.DialPipe(ctx, peer)
			c := qmpclient.NewClient(qmpclient.Config{Name: "replay"})
			require.NoError(t, c.ConnectDialer(ctx, dial))
			require.NoError(t, f.flow(ctx, c))
			require.NoError(t, c.Disconnect(ctx))
			require.NoError(t, <-served)
			require.NoError(t, peer.Done())
		})
	}
}

// A stray command fails the replayed session with a diff.
func TestUnplugDiskOfTheWrongDevice(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, err := transcript.NewQMPPeer(load(t, filepath.Base(unplugTranscript)), transcript.PeerConfig{})
	require.NoError(t, err)
	dial, served := transcript.DialPipe(ctx, peer)
	c := qmpclient.NewClient(qmpclient.Config{Name: "replay"})
	require.NoError(t, c.ConnectDialer(ctx, dial))
	err = unplugDisk(ctx, c, "otherdisk")
	require.ErrorIs(t, err, qmpclient.ErrDisconnected, "the peer hung up on the stray command")
	err = <-served
	require.ErrorIs(t, err, transcript.ErrMismatch)
	require.ErrorContains(t, err, `  execute: expected "blockdev-add", got "device_del"`)
	_ = c.Disconnect(ctx)
}

// The same flows against a live QEMU 7.2 (the unplug automation among
// them), recorded. Each recording must match its committed transcript (ids,
// timestamps and times aside), so a QEMU whose behaviour drifted fails here;
// WIREREACTOR_RECORD=1 rewrites the transcripts instead.
func TestQEMUTranscriptsAgainstQEMU(t *testing.T) {
	testpeers.QEMUBinary(t)
	for _, f := range qemuFlows {
		t.Run(filepath.Base(f.transcript), func(t *testing.T) {
			recorded := recordQEMU(t, f.args, f.flow)
			if os.Getenv("WIREREACTOR_RECORD") == "1" {
				require.NoError(t, os.WriteFile(f.transcript, recorded, 0o644))
				return
			}
			live, err := transcript.Read(bytes.NewReader(recorded))
			require.NoError(t, err)
			require.Equal(t, shape(t, load(t, filepath.Base(f.transcript))), shape(t, live),
				"QEMU's behaviour drifted from %s (rerun with WIREREACTOR_RECORD=1 to accept it)", f.transcript)
		})
	}
}

// recordQEMU runs flow against a fresh QEMU started with args and returns
// the session's transcript.
func recordQEMU(t *testing.T, args []string, flow func(context.Context, *qmpclient.Client) error) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"-machine", "pc", "-accel", "tcg", "-S", "-nodefaults", "-display", "none"}, args...)
	q := testpeers.StartQEMU(t, args...)

	var rec bytes.Buffer
	r, err := transcript.NewRecorder(&rec, transcript.RecorderConfig{SplitJSON: true,
		Header: transcript.Header{Protocol: "qmp", Note: "recorded by TestQEMUTranscriptsAgainstQEMU from QEMU 7.2: qemu-system-x86_64 " + strings.Join(args, " ")}})
	require.NoError(t, err)
	c := qmpclient.NewClient(qmpclient.Config{Name: "qemu"})
	dial := transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", q.Socket)
		if err != nil {
			return nil, err
		}
		return transcript.RecordConn(conn, r), nil
	})
	require.NoError(t, c.ConnectDialer(ctx, dial))
	require.NoError(t, flow(ctx, c))
	require.NoError(t, c.Disconnect(ctx))
	require.NoError(t, r.Err())
	return rec.Bytes()
}

// shape is what a transcript says minus what legitimately changes between
// runs: times, ids, event timestamps, and QEMU's micro version and package.
func shape(t *testing.T, tr *transcript.Transcript) []string {
	var out []string
	for _, e := range tr.Entries {
		line := string(e.Ev)
		if e.By != "" {
			line += " by " + e.By
		}
		if b := e.Bytes(); len(b) > 0 {
			var v map[string]any
			require.NoError(t, json.Unmarshal(b, &v), "line %d", e.Line)
			delete(v, "id")
			delete(v, "timestamp")
			if g, ok := v["QMP"].(map[string]any); ok {
				if ver, ok := g["version"].(map[string]any); ok {
					delete(ver, "package")
					if q, ok := ver["qemu"].(map[string]any); ok {
						delete(q, "micro")
					}
				}
			}
			norm, _ := json.Marshal(v)
			line += " " + string(norm)
		}
		out = append(out, line)
	}
	return out
}
