// Package harness is the machinery of go run ./bench/cmd/report: it measures
// every layer of wirereactor beside the peers a user would pick instead,
// doing the same work, in one run, and reports medians, ratios and verdicts.
//
// A Comparison pairs our side with one or more peers (golang.org/x/net/http2's
// Framer, Mercurial 6.3's Python reactors and readframe, hand-written and
// third-party QMP clients, raw sockets and WebSocket libraries). Compare runs
// every side Config.Count times, interleaved (ours, then each peer, then ours
// again) so all of them see the same machine noise, and makes one Row per
// peer: the median of each side and the median, minimum and maximum of the
// per-repetition ratios. Ratios measured in the same run are the figures to
// trust; absolute numbers move with the machine.
//
// The ratio is always peer time ÷ our time: above 1 we are faster, below 1
// slower. Verdicts come from one table, Targets (the goals of issues 11 and
// 12), looked up by row ID.
//
// Peers that are missing (Mercurial, QEMU, the bench/peers module that holds
// third-party clients) make their rows skipped with a reason, never a figure.
package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Sample is one measurement of one side.
type Sample struct {
	NsPerOp     float64 `json:"ns_per_op"`
	MBPerS      float64 `json:"mb_per_s,omitempty"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	// HasAllocs is false where allocations cannot be counted (a Python peer,
	// a measurement spread over another process).
	HasAllocs bool `json:"has_allocs"`
	// CPUNsPerOp is user+system CPU time per op of the measuring process
	// (getrusage, Python's process_time); zero where not taken.
	CPUNsPerOp float64 `json:"cpu_ns_per_op,omitempty"`
	// Counted says Errors and Crossed were counted: concurrent QMP clients
	// check every reply against the command that asked for it.
	Counted bool `json:"counted,omitempty"`
	// Errors is how many operations failed; Crossed how many returned the
	// reply to another caller's command.
	Errors  int64 `json:"errors,omitempty"`
	Crossed int64 `json:"crossed,omitempty"`
	// FirstError is the first failure's message, when there was one.
	FirstError string `json:"first_error,omitempty"`
}

// Side is one participant of a comparison: a name and a function taking one
// Sample. A side returns an error wrapping ErrSkip when a peer it needs is
// missing.
type Side struct {
	Name string
	Run  func(ctx context.Context, cfg Config) (Sample, error)
}

// Comparison is our side beside one or more peers; it makes one Row per
// peer (and more, see CPUToo and BestOf).
type Comparison struct {
	Group string // e.g. "frame", "reactor", "qmp"
	Name  string // the case, e.g. "decode 64 B"
	Ours  Side
	Peers []Side
	// Metric chooses what the ratio compares: "" for wall time per op,
	// "cpu" for the measuring process's CPU time per op. Single-threaded
	// in-memory work is compared on CPU time: on a loaded machine wall
	// time also counts the time spent waiting for a core, which neither
	// side controls.
	Metric string
	// CPUToo adds, for each peer of a wall-time comparison, a row named
	// Name + CPUSuffix comparing the same runs' CPU time per op.
	CPUToo bool
	// BestOf names peers whose fastest sample in each repetition makes one
	// more row, against "best of A, B".
	BestOf []string
}

// CPUSuffix ends the name of the CPU rows a CPUToo comparison adds.
const CPUSuffix = ", client CPU"

// ErrSkip marks a side that could not run because a peer is missing.
var ErrSkip = errors.New("skipped")

// Skip returns an error that makes a row skipped with reason.
func Skip(reason string) error { return fmt.Errorf("%w: %s", ErrSkip, reason) }

// Config says how long and how often to measure.
type Config struct {
	// Count is how many times each side runs (the median is reported).
	Count int
	// BenchTime is the time testing.Benchmark spends per Go sample, and the
	// minimum time a peer process measures for.
	BenchTime time.Duration
	// Quick selects CI-sized runs: shorter times, smaller scale steps.
	Quick bool
	// Python is the interpreter with Mercurial importable
	// (/usr/bin/python3 when empty).
	Python string
	// QEMU is the emulator binary (qemu-system-x86_64 when empty).
	QEMU string
	// Go is the go command that builds the bench/peers module ("go" from
	// PATH when empty); "none" skips every peer of that module.
	Go string
	// ScaleSteps are the connection counts of the scale runs.
	ScaleSteps []int
	// Log, when set, receives progress lines.
	Log func(format string, args ...any)
}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// DefaultConfig is the full run: several minutes on a 2-core machine. Nine
// repetitions, because on a shared 2-core VM a single QMP sample against
// the responder ranges from 0.7× to 1.2× of its peer from one run to the
// next: five left the median at the mercy of two bad samples. Samples of
// half a second ride out the host's shorter stalls.
func DefaultConfig() Config {
	return Config{Count: 9, BenchTime: 500 * time.Millisecond, ScaleSteps: []int{100, 1000, 10000}}
}

// QuickConfig is the CI-sized run.
func QuickConfig() Config {
	return Config{Count: 2, BenchTime: 20 * time.Millisecond, Quick: true, ScaleSteps: []int{100}}
}

// Row is the outcome of one peer of one comparison.
type Row struct {
	// ID names the row in Targets: group/case vs peer.
	ID      string  `json:"id"`
	Group   string  `json:"group"`
	Name    string  `json:"name"`
	Ours    string  `json:"ours"`
	Peer    string  `json:"peer"`
	OursMed *Sample `json:"ours_median,omitempty"`
	PeerMed *Sample `json:"peer_median,omitempty"`
	// Ratio is the median of Ratios, one per repetition (peer ÷ ours in
	// the row's metric); Min and Max bound them.
	Ratio  float64   `json:"ratio,omitempty"`
	Min    float64   `json:"ratio_min,omitempty"`
	Max    float64   `json:"ratio_max,omitempty"`
	Ratios []float64 `json:"ratios,omitempty"`
	Metric string    `json:"metric,omitempty"`
	Target string    `json:"target,omitempty"`
	// MinRatio is the target's smallest ratio (0 without a target).
	MinRatio float64 `json:"min_ratio,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Skipped  string  `json:"skipped,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// RowID is the key of a row in Targets.
func RowID(group, name, peer string) string { return group + "/" + name + " vs " + peer }

// value returns the figure a row's ratio is made of for s.
func value(metric string, s Sample) float64 {
	if metric == "cpu" {
		return s.CPUNsPerOp
	}
	return s.NsPerOp
}

// Compare runs c: Count interleaved repetitions of our side and every
// peer. A peer that fails or is missing is dropped from the later
// repetitions; its rows say why.
func Compare(ctx context.Context, cfg Config, c Comparison) []Row {
	ours := make([]Sample, 0, cfg.Count)
	peers := make([][]Sample, len(c.Peers))
	skipped := make([]string, len(c.Peers))
	oursSkipped := ""
	for i := range max(cfg.Count, 1) {
		if err := ctx.Err(); err != nil {
			oursSkipped = "cancelled: " + err.Error()
			break
		}
		o, err := c.Ours.Run(ctx, cfg)
		if err != nil {
			oursSkipped = reason(c.Ours.Name, err)
			break
		}
		ours = append(ours, o)
		for p, side := range c.Peers {
			if skipped[p] != "" {
				continue
			}
			s, err := side.Run(ctx, cfg)
			if err != nil {
				skipped[p] = reason(side.Name, err)
				continue
			}
			peers[p] = append(peers[p], s)
			cfg.logf("  %s / %s #%d: ours %.0f ns/op, %s %.0f ns/op", c.Group, c.Name, i+1,
				value(c.Metric, o), side.Name, value(c.Metric, s))
		}
	}
	var rows []Row
	add := func(name, peer, metric string, ps []Sample, skip string) {
		r := Row{ID: RowID(c.Group, name, peer), Group: c.Group, Name: name, Ours: c.Ours.Name, Peer: peer, Metric: metric}
		if len(ours) > 0 {
			om := median(ours)
			r.OursMed = &om
		}
		switch {
		case oursSkipped != "":
			r.Skipped = oursSkipped
		case skip != "":
			r.Skipped = skip
		default:
			pm := median(ps)
			r.PeerMed = &pm
			for i := range ps {
				if o, p := value(metric, ours[i]), value(metric, ps[i]); o > 0 && p > 0 {
					r.Ratios = append(r.Ratios, p/o)
				}
			}
			if len(r.Ratios) == 0 {
				r.Skipped = "no " + metricName(metric) + " figure to compare"
			} else {
				r.Ratio, r.Min, r.Max = medianOf(r.Ratios), slices.Min(r.Ratios), slices.Max(r.Ratios)
			}
		}
		judge(&r)
		rows = append(rows, r)
	}
	for p, side := range c.Peers {
		add(c.Name, side.Name, c.Metric, peers[p], skipped[p])
	}
	if c.CPUToo {
		for p, side := range c.Peers {
			add(c.Name+CPUSuffix, side.Name, "cpu", peers[p], skipped[p])
		}
	}
	if len(c.BestOf) > 0 {
		best, skip := bestOf(c, peers, skipped, len(ours))
		add(c.Name, BestName(c.BestOf), c.Metric, best, skip)
	}
	return rows
}

// BestName names the row of the fastest of peers.
func BestName(peers []string) string {
	name := "best of "
	for i, p := range peers {
		if i > 0 {
			name += ", "
		}
		name += p
	}
	return name
}

// bestOf picks, in each repetition, the fastest sample of the peers named
// in c.BestOf that ran; skipped peers are left out (and named in the
// result's skip reason only when none ran).
func bestOf(c Comparison, peers [][]Sample, skipped []string, reps int) ([]Sample, string) {
	var ran []int
	var why []string
	for _, name := range c.BestOf {
		for p, side := range c.Peers {
			if side.Name != name {
				continue
			}
			if skipped[p] != "" || len(peers[p]) != reps {
				why = append(why, skipped[p])
			} else {
				ran = append(ran, p)
			}
		}
	}
	if len(ran) == 0 {
		if len(why) == 0 {
			return nil, "none of the peers ran"
		}
		return nil, fmt.Sprint(why)
	}
	best := make([]Sample, reps)
	for i := range reps {
		best[i] = peers[ran[0]][i]
		for _, p := range ran[1:] {
			if value(c.Metric, peers[p][i]) < value(c.Metric, best[i]) {
				best[i] = peers[p][i]
			}
		}
	}
	return best, ""
}

func metricName(metric string) string {
	if metric == "cpu" {
		return "CPU time"
	}
	return "time"
}

// judge sets r's target and verdict from Targets.
func judge(r *Row) {
	t, ok := TargetFor(r.ID)
	if !ok {
		return
	}
	r.Target, r.MinRatio = t.Text, t.MinRatio
	if r.Skipped != "" || r.OursMed == nil {
		return
	}
	met := r.Ratio >= t.MinRatio
	if t.MaxAllocs > 0 && r.OursMed.AllocsPerOp > t.MaxAllocs {
		met = false
	}
	if t.MaxOursNs > 0 && value(r.Metric, *r.OursMed) > t.MaxOursNs {
		met = false
	}
	r.Met = &met
}

func reason(side string, err error) string {
	if errors.Is(err, ErrSkip) {
		return fmt.Sprintf("%s: %v", side, err)
	}
	return fmt.Sprintf("%s failed: %v", side, err)
}

// median takes the median of each field independently; errors and crossed
// replies are summed.
func median(s []Sample) Sample {
	pick := func(f func(Sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		return medianOf(v)
	}
	m := Sample{
		NsPerOp:     pick(func(s Sample) float64 { return s.NsPerOp }),
		MBPerS:      pick(func(s Sample) float64 { return s.MBPerS }),
		AllocsPerOp: pick(func(s Sample) float64 { return s.AllocsPerOp }),
		BytesPerOp:  pick(func(s Sample) float64 { return s.BytesPerOp }),
		CPUNsPerOp:  pick(func(s Sample) float64 { return s.CPUNsPerOp }),
		HasAllocs:   len(s) > 0 && s[0].HasAllocs,
		Counted:     len(s) > 0 && s[0].Counted,
	}
	for _, x := range s {
		m.Errors += x.Errors
		m.Crossed += x.Crossed
		if m.FirstError == "" {
			m.FirstError = x.FirstError
		}
	}
	return m
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// GoBench runs f with testing.Benchmark for about cfg.BenchTime and turns
// the result into a Sample. f should call b.ReportAllocs and, for
// throughput, b.SetBytes. The CPU figure is the process's CPU time per op
// over the whole of f unless f reports its own "cpu-ns/op" (see
// startCPU), which every CPU-compared benchmark does so that its setup
// stays outside the measurement.
func GoBench(cfg Config, f func(b *testing.B)) (Sample, error) {
	if err := setBenchTime(cfg.BenchTime); err != nil {
		return Sample{}, err
	}
	var failed error
	r := testing.Benchmark(func(b *testing.B) {
		start := cpuNow()
		f(b)
		b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "proc-cpu-ns/op")
		if b.Failed() {
			failed = errors.New("benchmark failed")
		}
	})
	if failed != nil {
		return Sample{}, failed
	}
	if r.N == 0 {
		return Sample{}, errors.New("benchmark did not run (it called b.Fatal or b.Skip)")
	}
	s := Sample{
		NsPerOp:     float64(r.T.Nanoseconds()) / float64(r.N),
		AllocsPerOp: float64(r.MemAllocs) / float64(r.N),
		BytesPerOp:  float64(r.MemBytes) / float64(r.N),
		HasAllocs:   true,
	}
	// A benchmark whose op is a batch reports the time per item as
	// ns/exec; the sample is per item then.
	if per, ok := r.Extra["ns/exec"]; ok && per > 0 {
		items := s.NsPerOp / per
		s.NsPerOp, s.AllocsPerOp, s.BytesPerOp = per, s.AllocsPerOp/items, s.BytesPerOp/items
	}
	if r.Bytes > 0 && r.T > 0 {
		s.MBPerS = float64(r.Bytes) * float64(r.N) / 1e6 / r.T.Seconds()
	}
	if cpu, ok := r.Extra["cpu-ns/op"]; ok {
		s.CPUNsPerOp = cpu
	} else {
		s.CPUNsPerOp = r.Extra["proc-cpu-ns/op"]
	}
	if n, ok := r.Extra["errors"]; ok {
		s.Counted, s.Errors, s.Crossed = true, int64(n), int64(r.Extra["crossed"])
	}
	return s, nil
}

// startCPU starts a CPU measurement of a benchmark's loop: call it right
// before the loop and call the returned function right after it. It
// reports "cpu-ns/op", the process CPU time per op of the loop alone.
func startCPU(b *testing.B) (stop func()) {
	start := cpuNow()
	return func() { b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op") }
}

// setBenchTime points testing.Benchmark at d. testing.Benchmark reads the
// -test.benchtime flag, which exists once testing.Init has run (always in a
// test binary; the report command calls it).
func setBenchTime(d time.Duration) error {
	f := flag.Lookup("test.benchtime")
	if f == nil {
		testing.Init()
		if f = flag.Lookup("test.benchtime"); f == nil {
			return errors.New("testing flags are not registered")
		}
	}
	return f.Value.Set(d.String())
}
