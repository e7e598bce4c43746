package harness

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/reactor"
)

// The workloads of reactor/bench_test.go and reactor/testdata/bench_hg.py
// (the reactor package's own comparison with Mercurial): the same request,
// response objects and response frame, so the report's figures and the
// reactor package's agree. The Python side runs that script's functions.
const (
	hgBenchRequest  = "cbor:{b'name': b'heads', b'args': {b'foo': b'bar'}}"
	hgBenchResponse = "cbor:{b'node': b'0123456789abcdef0123', b'rev': 42, b'tags': [b'tip', b'default']}"
)

func hgBenchObjects() []any {
	return []any{
		map[hgcbor.Bytes]any{"node": []byte("0123456789abcdef0123"), "rev": 42},
		[]any{[]byte("a"), []byte("b"), []byte("c")},
	}
}

// hgRequestFrames: single-frame command requests, request ids 1…32767 (odd),
// the first beginning stream 1. Built once per process, before any clock
// starts, as bench_hg.py builds its own at import.
var hgRequestFrames = sync.OnceValue(func() []frame.Frame {
	var frames []frame.Frame
	for rid := 1; rid < 32768; rid += 2 {
		sf := "0"
		if rid == 1 {
			sf = "stream-begin"
		}
		frames = append(frames, frame.MustParseHuman(fmt.Sprintf("%d 1 %s command-request new %s", rid, sf, hgBenchRequest)))
	}
	return frames
})

// Peer names used by Targets.
const (
	peerHgServer = "Mercurial serverreactor"
	peerHgClient = "Mercurial clientreactor"
)

// ReactorComparisons pits the server and client reactors against Mercurial
// 6.3's Python reactors on the same frames (reactor/testdata/bench_hg.py
// holds the Python workloads).
func ReactorComparisons() []Comparison {
	hg := &hgPeer{}
	return []Comparison{
		{Group: "reactor", Name: "server: 1-frame request delivered",
			Ours:   Side{"reactor.ServerMachine", goSide(benchServerRequest)},
			Peers:  []Side{{peerHgServer, hg.side("requests")}},
			Metric: "cpu"},
		{Group: "reactor", Name: "server: request → response bytes",
			Ours:   Side{"reactor.ServerMachine", goSide(benchServerCycle)},
			Peers:  []Side{{peerHgServer, hg.side("cycle")}},
			Metric: "cpu"},
		{Group: "reactor", Name: "client: response frame delivered",
			Ours:   Side{"reactor.ClientMachine", goSide(benchClientFrames)},
			Peers:  []Side{{peerHgClient, hg.side("client_frames")}},
			Metric: "cpu"},
	}
}

// benchServerRequest: as reactor.BenchmarkServerCommandRequest and
// bench_hg.requests — a fresh reactor per 16384 requests (ids must stay
// unique while their commands are active). The frames are built before
// the clock starts, on both sides.
func benchServerRequest(b *testing.B) {
	frames := hgRequestFrames()
	var r *reactor.ServerMachine
	b.SetBytes(int64(frames[1].Size()))
	b.ReportAllocs()
	i := 0
	stop := startCPU(b)
	for b.Loop() {
		if i == 0 {
			r = reactor.NewServerMachine(reactor.ServerMachineConfig{})
		}
		r.OnFrame(frames[i])
		if a := r.Next(); a.Kind != action.KindDeliver {
			b.Fatalf("request %d: %v", i, a)
		}
		if i++; i == len(frames) {
			i = 0
		}
	}
	stop()
}

// benchServerCycle: as reactor.BenchmarkServerRequestResponse and
// bench_hg.cycle — requests 1 and 3 alternate on one reactor, each answered
// with the response objects, the frames taken as bytes.
func benchServerCycle(b *testing.B) {
	frames := []frame.Frame{
		frame.MustParseHuman("1 1 stream-begin command-request new " + hgBenchRequest),
		frame.MustParseHuman("3 1 0 command-request new " + hgBenchRequest),
		frame.MustParseHuman("1 1 0 command-request new " + hgBenchRequest),
	}
	objs := hgBenchObjects()
	r := reactor.NewServerMachine(reactor.ServerMachineConfig{})
	out := r.NewOutputStream()
	sent := 0
	b.ReportAllocs()
	i := 0
	stop := startCPU(b)
	for b.Loop() {
		f := frames[i&1]
		if i == 2 {
			f = frames[2]
		}
		i++
		r.OnFrame(f)
		a := r.Next()
		if a.Kind != action.KindDeliver {
			b.Fatal(a)
		}
		if err := r.RespondObjects(out, a.Value.RequestID, objs...); err != nil {
			b.Fatal(err)
		}
		if a = r.Next(); a.Kind != action.KindSend {
			b.Fatal(a)
		}
		sent = len(a.Bytes)
	}
	stop()
	b.SetBytes(int64(sent))
}

// benchClientFrames: as reactor.BenchmarkClientResponseFrames and
// bench_hg.client_frames — one command-response frame per op.
func benchClientFrames(b *testing.B) {
	c := reactor.NewClientMachine(reactor.ClientMachineConfig{MultipleSends: true, Immediate: true})
	if _, err := c.CallCommand(reactor.Request{Name: "heads"}); err != nil {
		b.Fatal(err)
	}
	drainTo(b, c.Next)
	c.OnFrame(frame.MustParseHuman("1 2 stream-begin command-response continuation " + hgBenchResponse))
	drainTo(b, c.Next)
	f := frame.MustParseHuman("1 2 0 command-response continuation " + hgBenchResponse)
	b.SetBytes(int64(f.Size()))
	b.ReportAllocs()
	stop := startCPU(b)
	for b.Loop() {
		c.OnFrame(f)
		if a := c.Next(); a.Kind != action.KindDeliver {
			b.Fatal(a)
		}
	}
	stop()
}

func drainTo[T any](b *testing.B, next func() action.Action[T]) {
	for a := next(); a.Kind != action.KindWantMore; a = next() {
		if a.Kind == action.KindError {
			b.Fatal(a.Err)
		}
	}
}

// hgBenchScript finds reactor/testdata/bench_hg.py in the source tree.
func hgBenchScript() (string, error) {
	return inSourceTree("reactor", "testdata", "bench_hg.py")
}

// inSourceTree finds a file of the repository: relative to this source
// file when run from the source tree (go run, go test), else relative to
// the working directory.
func inSourceTree(elem ...string) (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(append([]string{filepath.Dir(file), "..", "..", ".."}, elem...)...))
	}
	candidates = append(candidates, filepath.Join(elem...))
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", Skip(filepath.Join(elem...) + " not found (run from the source tree)")
}

// hgTimer times one Mercurial workload: a function of bench_hg.py or
// readframe:SIZE (see the script).
//
//go:embed hg_timer.py
var hgTimer string

// hgPeer runs Mercurial's reactors through reactor/testdata/bench_hg.py.
type hgPeer struct {
	once sync.Once
	skip error
}

func (h *hgPeer) check(cfg Config) error {
	h.once.Do(func() {
		py := cfg.python()
		if _, err := exec.LookPath(py); err != nil {
			h.skip = Skip(fmt.Sprintf("python %s not found", py))
			return
		}
		out, err := exec.Command(py, "-c", "import sys; from mercurial import __version__; print(__version__.version.decode(), sys.version.split()[0])").Output()
		if err != nil {
			h.skip = Skip("Mercurial is not importable by " + py)
			return
		}
		hg, pyv, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		recordPeer("Mercurial", hg)
		recordPeer("Python", pyv)
	})
	return h.skip
}

func (c Config) python() string {
	if c.Python != "" {
		return c.Python
	}
	return "/usr/bin/python3"
}

// side returns the Python side timing workload (a function of bench_hg.py,
// or readframe:SIZE).
func (h *hgPeer) side(fn string) func(context.Context, Config) (Sample, error) {
	return func(ctx context.Context, cfg Config) (Sample, error) {
		if err := h.check(cfg); err != nil {
			return Sample{}, err
		}
		script, err := hgBenchScript()
		if err != nil {
			return Sample{}, err
		}
		ctx, cancel := context.WithTimeout(ctx, peerTimeout(cfg))
		defer cancel()
		cmd := exec.CommandContext(ctx, cfg.python(), "-c", hgTimer, script, fn,
			strconv.FormatFloat(cfg.BenchTime.Seconds(), 'f', -1, 64))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return Sample{}, fmt.Errorf("python: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		var r struct {
			NsPerOp    float64 `json:"ns_per_op"`
			CPUNsPerOp float64 `json:"cpu_ns_per_op"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return Sample{}, fmt.Errorf("python output %q: %w", out, err)
		}
		if r.NsPerOp <= 0 {
			return Sample{}, errors.New("python printed no timing")
		}
		return Sample{NsPerOp: r.NsPerOp, CPUNsPerOp: r.CPUNsPerOp}, nil
	}
}
