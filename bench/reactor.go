package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/reactor"
)

// hgTimingScript times Mercurial's reactors; embedded so the report runs
// from any directory.
//
//go:embed peers/hg_reactor_timing.py
var hgTimingScript []byte

// reactorBatch is how many operations one pass over a reactor input holds:
// both sides start a fresh reactor per pass (request ids must stay unique
// while commands are active), so its cost is spread over this many ops.
const reactorBatch = 1000

// reactorCase is one input both reactors are timed on.
type reactorCase struct {
	kind   string // the Python script's case kind
	wire   []byte // the frames, back to back
	frames [][]byte
	object []byte // server_cycle: the response object, CBOR
}

// commandRequests returns n single-frame command requests on stream 1,
// request ids 1, 3, 5…, the first beginning the stream.
func commandRequests(n int) [][]byte {
	payload, err := hgcbor.Marshal(map[hgcbor.Bytes]any{
		"name": hgcbor.Bytes("lookup"),
		"args": map[hgcbor.Bytes]any{"key": hgcbor.Bytes("tip")},
	})
	if err != nil {
		panic(err)
	}
	frames := make([][]byte, n)
	for i := range frames {
		f := frame.Frame{RequestID: uint16(1 + 2*i), StreamID: 1, Type: frame.TypeCommandRequest,
			Flags: frame.FlagCommandRequestNew, Payload: payload}
		if i == 0 {
			f.StreamFlags = frame.StreamBegin
		}
		frames[i] = f.Append(nil)
	}
	return frames
}

// responseFrames returns n command-response frames for request 1 on stream
// 2, the first beginning the stream and the last ending the response.
func responseFrames(n, size int) [][]byte {
	payload := payloadOf(size)
	frames := make([][]byte, n)
	for i := range frames {
		f := frame.Frame{RequestID: 1, StreamID: 2, Type: frame.TypeCommandResponse,
			Flags: frame.FlagCommandResponseContinuation, Payload: payload}
		if i == 0 {
			f.StreamFlags = frame.StreamBegin
		}
		if i == n-1 {
			f.Flags = frame.FlagCommandResponseEOS
		}
		frames[i] = f.Append(nil)
	}
	return frames
}

// cycleObject is the response object of the request → response cycle: what
// a small Mercurial command (lookup) answers.
func cycleObject() []byte {
	obj, err := hgcbor.Marshal(map[hgcbor.Bytes]any{
		"node":  hgcbor.Bytes(bytes.Repeat([]byte{0xab}, 20)),
		"rev":   42,
		"phase": hgcbor.Bytes("public"),
	})
	if err != nil {
		panic(err)
	}
	return obj
}

func newReactorCase(kind string, frames [][]byte) reactorCase {
	return reactorCase{kind: kind, frames: frames, wire: bytes.Join(frames, nil)}
}

// ReactorComparisons pits the server and client reactors against Mercurial
// 6.3's Python reactors on the same frame bytes (see
// peers/hg_reactor_timing.py for the Python side).
func ReactorComparisons() []Comparison {
	deliver := newReactorCase("server_deliver", commandRequests(reactorBatch))
	cycle := newReactorCase("server_cycle", commandRequests(reactorBatch))
	cycle.object = cycleObject()
	client64 := newReactorCase("client_frames", responseFrames(reactorBatch, 64))
	// Fewer big frames per pass: the input travels to Python as hex.
	client32k := newReactorCase("client_frames", responseFrames(reactorBatch/10, 32<<10))
	hg := &hgPeer{}
	return []Comparison{
		{Group: "reactor", Name: "server: 1-frame request delivered",
			Ours:   Side{"reactor.ServerReactor", goSide(func(b *testing.B) { benchServerDeliver(b, deliver) })},
			Peer:   Side{"Mercurial serverreactor", hg.side(deliver, nil)},
			Target: "≥ 30", MinRatio: 30, Metric: "cpu"},
		{Group: "reactor", Name: "server: request → response bytes",
			Ours:   Side{"reactor.ServerReactor", goSide(func(b *testing.B) { benchServerCycle(b, cycle) })},
			Peer:   Side{"Mercurial serverreactor", hg.side(cycle, ourCycleOutput(cycle))},
			Target: "≥ 50", MinRatio: 50, Metric: "cpu"},
		{Group: "reactor", Name: "client: response frame 64 B",
			Ours:   Side{"reactor.ClientReactor", goSide(func(b *testing.B) { benchClientFrames(b, client64) })},
			Peer:   Side{"Mercurial clientreactor", hg.side(client64, nil)},
			Target: "≥ 30", MinRatio: 30, Metric: "cpu"},
		{Group: "reactor", Name: "client: response frame 32 KiB",
			Ours:   Side{"reactor.ClientReactor", goSide(func(b *testing.B) { benchClientFrames(b, client32k) })},
			Peer:   Side{"Mercurial clientreactor", hg.side(client32k, nil)},
			Target: "≥ 30", MinRatio: 30, Metric: "cpu"},
	}
}

func benchServerDeliver(b *testing.B, c reactorCase) {
	var r *reactor.ServerReactor
	b.SetBytes(int64(len(c.frames[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == 0 {
			r = reactor.NewServerReactor(reactor.ServerConfig{})
		}
		r.Feed(c.frames[i])
		if a := r.Next(); a.Kind != action.Deliver {
			b.Fatalf("request %d: %v", i, a)
		}
		if a := r.Next(); a.Kind != action.WantMore {
			b.Fatalf("request %d: %v", i, a)
		}
		if i++; i == len(c.frames) {
			i = 0
		}
	}
}

// cycleRun answers every request of c with obj and calls out with each
// response's bytes.
type cycleRun struct {
	r   *reactor.ServerReactor
	s   *reactor.OutputStream
	obj any
}

func (cr *cycleRun) step(frameBytes []byte, out func([]byte)) error {
	cr.r.Feed(frameBytes)
	for {
		a := cr.r.Next()
		switch a.Kind {
		case action.Deliver:
			if err := cr.r.RespondObjects(cr.s, a.Value.RequestID, cr.obj); err != nil {
				return err
			}
		case action.Send:
			out(a.Bytes)
		case action.WantMore:
			return nil
		default:
			return a.Err
		}
	}
}

func newCycleRun(c reactorCase) *cycleRun {
	obj, err := hgcbor.Unmarshal(c.object)
	if err != nil {
		panic(err)
	}
	r := reactor.NewServerReactor(reactor.ServerConfig{})
	return &cycleRun{r: r, s: r.NewOutputStream(), obj: obj}
}

// ourCycleOutput is the response our server reactor writes for the first
// request of c, to check Mercurial wrote the same bytes.
func ourCycleOutput(c reactorCase) []byte {
	cr := newCycleRun(c)
	var out []byte
	if err := cr.step(c.frames[0], func(p []byte) { out = append(out, p...) }); err != nil {
		panic(err)
	}
	return out
}

func benchServerCycle(b *testing.B, c reactorCase) {
	var cr *cycleRun
	sent := 0
	b.SetBytes(int64(len(c.frames[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == 0 {
			cr = newCycleRun(c)
		}
		if err := cr.step(c.frames[i], func(p []byte) { sent += len(p) }); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(c.frames) {
			i = 0
		}
	}
	if sent == 0 {
		b.Fatal("no response bytes")
	}
}

func benchClientFrames(b *testing.B, c reactorCase) {
	var r *reactor.ClientReactor
	b.SetBytes(int64(len(c.frames[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == 0 {
			r = reactor.NewClientReactor(reactor.ClientConfig{})
			if _, err := r.CallCommand(reactor.Request{Name: "heads"}); err != nil {
				b.Fatal(err)
			}
			if err := r.FlushCommands(); err != nil {
				b.Fatal(err)
			}
			for a := r.Next(); a.Kind != action.WantMore; a = r.Next() {
				if a.Kind != action.Send {
					b.Fatal(a)
				}
			}
		}
		r.Feed(c.frames[i])
		if a := r.Next(); a.Kind != action.Deliver {
			b.Fatalf("frame %d: %v", i, a)
		}
		if a := r.Next(); a.Kind != action.WantMore {
			b.Fatalf("frame %d: %v", i, a)
		}
		if i++; i == len(c.frames) {
			i = 0
		}
	}
}

// hgPeer runs the Python timing script (fed on stdin, so nothing needs to
// be written next to it).
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

// side returns the Python side for c. When want is set, the first
// response Mercurial writes must equal it (the two sides did the same
// work).
func (h *hgPeer) side(c reactorCase, want []byte) func(context.Context, Config) (Sample, error) {
	return func(ctx context.Context, cfg Config) (Sample, error) {
		if err := h.check(cfg); err != nil {
			return Sample{}, err
		}
		spec := map[string]any{
			"mintime": cfg.BenchTime.Seconds(),
			"cases": map[string]any{"case": map[string]any{
				"kind": c.kind, "batch": hex.EncodeToString(c.wire), "n": len(c.frames),
				"object": hex.EncodeToString(c.object),
			}},
		}
		in, err := json.Marshal(spec)
		if err != nil {
			return Sample{}, err
		}
		f, err := os.CreateTemp("", "wirereactor-bench-hg-*.json")
		if err != nil {
			return Sample{}, err
		}
		defer os.Remove(f.Name())
		if _, err := f.Write(in); err != nil {
			f.Close()
			return Sample{}, err
		}
		if err := f.Close(); err != nil {
			return Sample{}, err
		}
		cmd := exec.CommandContext(ctx, cfg.python(), "-", f.Name())
		cmd.Stdin = bytes.NewReader(hgTimingScript)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return Sample{}, fmt.Errorf("python: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		var res struct {
			Cases map[string]struct {
				NsPerOp    float64 `json:"ns_per_op"`
				CPUNsPerOp float64 `json:"cpu_ns_per_op"`
				Output     string  `json:"output"`
			} `json:"cases"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return Sample{}, fmt.Errorf("python output: %w", err)
		}
		r, ok := res.Cases["case"]
		if !ok || r.NsPerOp <= 0 {
			return Sample{}, errors.New("python printed no timing")
		}
		if want != nil && r.Output != hex.EncodeToString(want) {
			return Sample{}, fmt.Errorf("the response Mercurial wrote differs from ours: %s vs %x", r.Output, want)
		}
		s := Sample{NsPerOp: r.NsPerOp, CPUNsPerOp: r.CPUNsPerOp}
		s.MBPerS = float64(len(c.frames[0])) / r.NsPerOp * 1e3
		return s, nil
	}
}
