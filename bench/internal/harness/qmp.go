package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
)

// Names used by Targets.
const (
	qmpResponderSeq = "responder, sequential"
	qmpResponderPar = "responder, 8 goroutines"
	qmpQEMUSeq      = "QEMU, sequential"
	qmpQEMUPar      = "QEMU, 8 goroutines"

	peerBufio  = "bufio client"
	peerRawMux = "raw id-multiplexing client"
	peerGoQEMU = "go-qemu"
	peerGovmm  = "govmm"
)

// QMPComparisons measures executes: the sans-IO machines pumped in memory,
// then qmpclient.Client over unix sockets against servers in other processes —
// the instant-reply responder (bench/internal/responder, started by
// re-executing this program), whose replies cost the client only, and real
// QEMU — beside the clients a user would pick instead: a hand-written bufio
// client (write a line, read a line), and with 8 goroutines sharing one
// connection an id-multiplexing raw client, github.com/digitalocean/go-qemu
// and github.com/kata-containers/govmm (bench/peers, in their own process).
// The concurrent rows check every reply against its command and report
// errors and crossed replies beside the rates.
func QMPComparisons() []Comparison {
	responder := func(ctx context.Context, _ Config) (target, error) { return startResponder(ctx) }
	qemu := func(ctx context.Context, cfg Config) (target, error) { return startQEMU(ctx, cfg) }
	concurrentPeers := func(start func(context.Context, Config) (target, error)) []Side {
		return []Side{
			{peerRawMux, peerSide(start, "raw")},
			{peerGoQEMU, peerSide(start, "go-qemu")},
			{peerGovmm, peerSide(start, "govmm")},
			{peerBufio + " (mutex)", socketSide(start, benchBufioParallel(8))},
		}
	}
	best := []string{peerGoQEMU, peerGovmm}
	return []Comparison{
		{Group: "qmp", Name: "execute→reply, machines in memory",
			Ours:   Side{"qmp.ClientMachine+ServerMachine", goSide(benchMachinePump)},
			Peers:  []Side{{"encoding/json pump", goSide(benchJSONPump)}},
			Metric: "cpu"},
		{Group: "qmp", Name: qmpResponderSeq,
			Ours:   Side{"qmpclient.Client", socketSide(responder, benchOursParallel(1))},
			Peers:  []Side{{peerBufio, socketSide(responder, benchBufioParallel(1))}},
			CPUToo: true},
		{Group: "qmp", Name: qmpResponderPar,
			Ours:   Side{"qmpclient.Client", socketSide(responder, benchOursParallel(8))},
			Peers:  concurrentPeers(responder),
			BestOf: best},
		{Group: "qmp", Name: "responder, pipelined batches of 64",
			Ours:  Side{"qmpclient.Client", socketSide(responder, benchOursBatch(64))},
			Peers: []Side{{"bufio client, 64 lines then 64 reads", socketSide(responder, benchBufioBatch(64))}}},
		{Group: "qmp", Name: qmpQEMUSeq,
			Ours:   Side{"qmpclient.Client", socketSide(qemu, benchOursParallel(1))},
			Peers:  []Side{{peerBufio, socketSide(qemu, benchBufioParallel(1))}},
			CPUToo: true},
		{Group: "qmp", Name: qmpQEMUSeq + ", client CPU, oob off on both sides",
			Ours: Side{"qmpclient.Client, DisableOOB", socketSide(qemu, benchOursConfig(1,
				qmpclient.Config{Logger: quietLogger, Machine: qmp.ClientMachineConfig{DisableOOB: true}}))},
			Peers:  []Side{{peerBufio + ", plain qmp_capabilities", socketSide(qemu, benchBufioCaps(1, false))}},
			Metric: "cpu"},
		{Group: "qmp", Name: qmpQEMUPar,
			Ours:   Side{"qmpclient.Client", socketSide(qemu, benchOursParallel(8))},
			Peers:  concurrentPeers(qemu),
			BestOf: best},
		{Group: "qmp", Name: "QEMU, pipelined batches of 64",
			Ours:  Side{"qmpclient.Client", socketSide(qemu, benchOursBatch(64))},
			Peers: []Side{{"bufio client, 64 lines then 64 reads", socketSide(qemu, benchBufioBatch(64))}}},
	}
}

// target is a QMP server to measure against: its unix socket and how to
// stop it.
type target struct {
	path string
	stop func()
}

// startResponder starts the instant-reply responder in a child process.
func startResponder(ctx context.Context) (target, error) {
	c, err := startChild(ctx, childResponder)
	if err != nil {
		return target{}, err
	}
	return target{path: c.path, stop: c.stop}, nil
}

func (c Config) qemu() string {
	if c.QEMU != "" {
		return c.QEMU
	}
	return "qemu-system-x86_64"
}

// startQEMU starts QEMU with no machine, serving QMP on a unix socket, and
// waits for the socket.
func startQEMU(ctx context.Context, cfg Config) (target, error) {
	bin, err := exec.LookPath(cfg.qemu())
	if err != nil {
		return target{}, Skip(cfg.qemu() + " not found")
	}
	dir, err := os.MkdirTemp("", "wirereactor-bench-qemu")
	if err != nil {
		return target{}, err
	}
	path := filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(bin, "-machine", "none", "-nodefaults", "-display", "none", "-name", "bench",
		"-qmp", "unix:"+path+",server=on,wait=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return target{}, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return target{}, fmt.Errorf("QEMU did not open %s: %s", path, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	recordQEMUVersion(bin)
	return target{path: path, stop: stop}, nil
}

var qemuVersionOnce sync.Once

func recordQEMUVersion(bin string) {
	qemuVersionOnce.Do(func() {
		out, err := exec.Command(bin, "--version").Output()
		if err == nil {
			line, _, _ := bytes.Cut(out, []byte("\n"))
			recordPeer("QEMU", strings.TrimPrefix(string(line), "QEMU emulator version "))
		}
	})
}

// peerSide runs a client of bench/peers (8 goroutines) against a server
// started for it.
func peerSide(start func(context.Context, Config) (target, error), client string) func(context.Context, Config) (Sample, error) {
	return func(ctx context.Context, cfg Config) (Sample, error) {
		if _, err := peersBin.build(ctx, cfg); err != nil {
			return Sample{}, err
		}
		t, err := start(ctx, cfg)
		if err != nil {
			return Sample{}, err
		}
		defer t.stop()
		return runPeer(ctx, cfg, "qmp", "-client", client, "-socket", t.path, "-workers", "8")
	}
}

// socketSide starts a server, runs f against it under testing.Benchmark
// (the client's CPU time per op is measured with getrusage), and stops it.
func socketSide(start func(context.Context, Config) (target, error), f func(b *testing.B, path string)) func(context.Context, Config) (Sample, error) {
	return func(ctx context.Context, cfg Config) (Sample, error) {
		t, err := start(ctx, cfg)
		if err != nil {
			return Sample{}, err
		}
		defer t.stop()
		return GoBench(cfg, func(b *testing.B) { f(b, t.path) })
	}
}

// cpuNow returns this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// qmpCalls alternate between two commands whose replies differ (each has a
// key the other's lacks), so that a reply handed to another caller shows.
// qmptest, the responder and QEMU started with -name all answer both.
var qmpCalls = []struct{ name, key, otherKey string }{
	{"query-status", `"status"`, `"name"`},
	{"query-name", `"name"`, `"status"`},
}

// loopCPU runs call once per op — on workers goroutines at once through
// b.RunParallel when workers > 1 — and reports the process CPU per op.
// Every reply is checked against its command. A sequential run fails at
// the first error; a concurrent one counts errors (a goroutine stops at its
// first) and crossed replies and reports them as metrics.
func loopCPU(b *testing.B, workers int, call func(cmd string) ([]byte, error)) {
	b.ReportAllocs()
	start := cpuNow()
	if workers == 1 {
		i := 0
		for b.Loop() {
			c := qmpCalls[i%len(qmpCalls)]
			i++
			r, err := call(c.name)
			if err == nil && (!bytes.Contains(r, []byte(c.key)) || bytes.Contains(r, []byte(c.otherKey))) {
				err = fmt.Errorf("%s: reply %s", c.name, r)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	} else {
		var ok, errs, crossed, worker atomic.Int64
		b.SetParallelism((workers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		// RunParallel, unlike b.Loop, does not restart the clock: the
		// connection's setup must not count.
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := int(worker.Add(1)); pb.Next(); i++ {
				c := qmpCalls[i%len(qmpCalls)]
				r, err := call(c.name)
				if err != nil {
					errs.Add(1)
					return
				}
				if !bytes.Contains(r, []byte(c.key)) || bytes.Contains(r, []byte(c.otherKey)) {
					crossed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
		// Time per correct reply: failed and crossed calls do not count
		// (as in bench/peers).
		if n := ok.Load(); n > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/exec")
			b.ReportMetric(float64(cpuNow()-start)/float64(n), "cpu-ns/op")
		}
		b.ReportMetric(float64(errs.Load()), "errors")
		b.ReportMetric(float64(crossed.Load()), "crossed")
		return
	}
	b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
}

// quietLogger drops the client's logs: a benchmark connects and
// disconnects many times.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func dialClient(ctx context.Context, path string) (*qmpclient.Client, error) {
	return dialClientConfig(ctx, path, qmpclient.Config{Logger: quietLogger})
}

func dialClientConfig(ctx context.Context, path string, cfg qmpclient.Config) (*qmpclient.Client, error) {
	c := qmpclient.NewClient(cfg)
	if err := c.Connect(ctx, "unix:"+path); err != nil {
		return nil, err
	}
	return c, nil
}

// benchOursParallel: qmpclient.Client executes from workers goroutines at once
// (pipelined on the one connection); a batch of 64 is 64 goroutines.
func benchOursParallel(workers int) func(b *testing.B, path string) {
	return benchOursConfig(workers, qmpclient.Config{Logger: quietLogger})
}

func benchOursConfig(workers int, cfg qmpclient.Config) func(b *testing.B, path string) {
	return func(b *testing.B, path string) {
		ctx := context.Background()
		c, err := dialClientConfig(ctx, path, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Disconnect(ctx)
		loopCPU(b, workers, func(cmd string) ([]byte, error) {
			return c.Execute(ctx, cmd, nil)
		})
	}
}

func benchOursBatch(n int) func(b *testing.B, path string) { return benchOursParallel(n) }

// bufioClient is the peer: the minimal QMP client a person writes by hand
// with bufio — write a line, read lines until the reply. It negotiates the
// capabilities qmpclient.Client negotiates by default.
type bufioClient struct {
	mu sync.Mutex
	c  net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	id int
}

func dialBufio(path string) (*bufioClient, error) { return dialBufioCaps(path, true) }

// dialBufioCaps connects a bufio client; oob: enable oob when offered.
func dialBufioCaps(path string, oob bool) (*bufioClient, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	q := &bufioClient{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	greeting, err := q.readReply()
	if err != nil {
		c.Close()
		return nil, err
	}
	// The same conversation as qmpclient.Client's: it enables oob when the
	// server offers it (QEMU does, the responder does not), and with oob
	// QEMU reads and answers from its monitor thread, which changes the
	// wake-ups a client pays for.
	caps := `{"execute": "qmp_capabilities"}`
	if oob && bytes.Contains(greeting, []byte(`"oob"`)) {
		caps = `{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}`
	}
	if _, err := q.execute(caps); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

// readReply reads lines until one that is not an event; QEMU ends lines
// with \r\n.
func (q *bufioClient) readReply() ([]byte, error) {
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(line, []byte(`"event"`)) {
			return line, nil
		}
	}
}

func (q *bufioClient) execute(cmd string) ([]byte, error) {
	if _, err := q.w.WriteString(cmd + "\n"); err != nil {
		return nil, err
	}
	if err := q.w.Flush(); err != nil {
		return nil, err
	}
	line, err := q.readReply()
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(line, []byte(`"return"`)) {
		return nil, fmt.Errorf("bufio client: %s", line)
	}
	return line, nil
}

func (q *bufioClient) call(cmd string) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.id++
	return q.execute(`{"execute": "` + cmd + `", "id": ` + strconv.Itoa(q.id) + `}`)
}

func benchBufioParallel(workers int) func(b *testing.B, path string) {
	return benchBufioCaps(workers, true)
}

func benchBufioCaps(workers int, oob bool) func(b *testing.B, path string) {
	return func(b *testing.B, path string) {
		q, err := dialBufioCaps(path, oob)
		if err != nil {
			b.Fatal(err)
		}
		defer q.c.Close()
		loopCPU(b, workers, q.call)
	}
}

func benchBufioBatch(n int) func(b *testing.B, path string) {
	return func(b *testing.B, path string) {
		q, err := dialBufio(path)
		if err != nil {
			b.Fatal(err)
		}
		defer q.c.Close()
		b.ReportAllocs()
		start := cpuNow()
		for b.Loop() {
			for range n {
				q.id++
				q.w.WriteString(`{"execute": "query-status", "id": ` + strconv.Itoa(q.id) + "}\n")
			}
			if err := q.w.Flush(); err != nil {
				b.Fatal(err)
			}
			for range n {
				if _, err := q.readReply(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/exec")
		b.ReportMetric(float64(cpuNow()-start)/float64(b.N*n), "cpu-ns/op")
	}
}

// benchMachinePump: one execute per op from a client machine through a
// server machine and back, all in memory.
func benchMachinePump(b *testing.B) {
	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	s := qmp.NewServerMachine(qmp.ServerMachineConfig{})
	status := []byte(statusReply)
	var toServer, toClient []byte
	pump := func() (replies int) {
		for len(toServer) > 0 || len(toClient) > 0 {
			if len(toServer) > 0 {
				s.Feed(toServer)
				toServer = toServer[:0]
			}
			for a := s.Next(); a.Kind != action.KindWantMore; a = s.Next() {
				switch a.Kind {
				case action.KindSend:
					toClient = append(toClient, a.Bytes...)
				case action.KindDeliver:
					var r []byte
					if a.Value.Name == "query-status" {
						r = status
					}
					if err := s.Return(a.Value.ID, r); err != nil {
						b.Fatal(err)
					}
				default:
					b.Fatal(a)
				}
			}
			if len(toClient) > 0 {
				c.Feed(toClient)
				toClient = toClient[:0]
			}
			for a := c.Next(); a.Kind != action.KindWantMore; a = c.Next() {
				switch a.Kind {
				case action.KindSend:
					toServer = append(toServer, a.Bytes...)
				case action.KindDeliver:
					if a.Value.Kind == qmp.ReceivedKindReply {
						replies++
					}
				default:
					b.Fatal(a)
				}
			}
		}
		return replies
	}
	// The greeting goes out first; the handshake runs on the first pump.
	for a := s.Next(); a.Kind == action.KindSend; a = s.Next() {
		toClient = append(toClient, a.Bytes...)
	}
	pump()
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		if _, err := c.Execute("query-status", nil); err != nil {
			b.Fatal(err)
		}
		for a := c.Next(); a.Kind != action.KindWantMore; a = c.Next() {
			if a.Kind != action.KindSend {
				b.Fatal(a)
			}
			toServer = append(toServer, a.Bytes...)
		}
		if pump() != 1 {
			b.Fatal("no reply")
		}
	}
	stop()
}

// benchJSONPump is the same exchange written the plain way with
// encoding/json: marshal the command, unmarshal it on the server, marshal
// the reply, unmarshal it on the client and match the id.
func benchJSONPump(b *testing.B) {
	type command struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments,omitempty"`
		ID        json.RawMessage `json:"id,omitempty"`
	}
	type reply struct {
		Return json.RawMessage `json:"return,omitempty"`
		Error  *qmp.ErrorInfo  `json:"error,omitempty"`
		ID     json.RawMessage `json:"id,omitempty"`
	}
	status := json.RawMessage(statusReply)
	id := 0
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		id++
		out, err := json.Marshal(command{Execute: "query-status", ID: strconv.AppendInt(nil, int64(id), 10)})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, '\n')
		var cmd command
		if err := json.Unmarshal(out, &cmd); err != nil {
			b.Fatal(err)
		}
		resp, err := json.Marshal(reply{Return: status, ID: cmd.ID})
		if err != nil {
			b.Fatal(err)
		}
		resp = append(resp, '\r', '\n')
		var r reply
		if err := json.Unmarshal(resp, &r); err != nil {
			b.Fatal(err)
		}
		if got, _ := strconv.Atoi(string(r.ID)); got != id {
			b.Fatalf("reply id %s, want %d", r.ID, id)
		}
	}
	stop()
}
