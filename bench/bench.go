// Package bench measures every layer of wirereactor beside a peer doing the
// same work, in one process run, and reports medians and ratios.
//
// A Comparison pairs our measurement with a peer's (golang.org/x/net/http2's
// Framer, Mercurial 6.3's Python reactors, a hand-written bufio QMP client,
// raw sockets). Run repeats each side Config.Count times, alternating them so
// both see the same machine noise, and reports the median of each side and
// the median of the per-repetition ratios. Ratios measured in the same run
// are the figures to trust; absolute numbers move with the machine.
//
// The ratio is always peer time ÷ our time: above 1 we are faster, below 1
// slower. Targets from the issues are written the same way (for example
// "≥ 0.85" for "at least 0.85× the raw socket's throughput").
//
// Peers that are missing (Mercurial, QEMU) make their rows skipped with a
// reason, never failed. The command go run ./bench/cmd/report prints the
// table and writes it as Markdown and JSON.
package bench

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
	// CPUNsPerOp is user+system CPU time per op of this process, where the
	// measurement takes it (getrusage); zero otherwise.
	CPUNsPerOp float64 `json:"cpu_ns_per_op,omitempty"`
}

// Side is one half of a comparison: a name and a function taking one
// Sample. A side returns an error wrapping ErrSkip when a peer it needs is
// missing.
type Side struct {
	Name string
	Run  func(ctx context.Context, cfg Config) (Sample, error)
}

// Comparison is one row of the report: our side beside a peer's.
type Comparison struct {
	Group string // e.g. "frame", "reactor", "qmp"
	Name  string // the case, e.g. "decode 64 B"
	Ours  Side
	Peer  Side
	// Target is the goal for the ratio, e.g. "≥ 30"; empty for none.
	Target string
	// MinRatio is the smallest ratio meeting Target (0: no target).
	MinRatio float64
	// MaxAllocs, when set, is part of Target: our median allocations per op
	// must not exceed it.
	MaxAllocs float64
	// Metric chooses what the ratio compares: "" for wall time per op,
	// "cpu" for the process's CPU time per op. Single-threaded in-memory
	// work is compared on CPU time: on a loaded machine wall time also
	// counts the time spent waiting for a core, which neither side controls.
	Metric string
}

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

// DefaultConfig is the full run: a few minutes on a 2-core machine.
func DefaultConfig() Config {
	return Config{Count: 5, BenchTime: 300 * time.Millisecond, ScaleSteps: []int{100, 1000, 10000}}
}

// QuickConfig is the CI-sized run.
func QuickConfig() Config {
	return Config{Count: 2, BenchTime: 20 * time.Millisecond, Quick: true, ScaleSteps: []int{100}}
}

// Row is the outcome of one comparison.
type Row struct {
	Group   string    `json:"group"`
	Name    string    `json:"name"`
	Ours    string    `json:"ours"`
	Peer    string    `json:"peer"`
	OursMed *Sample   `json:"ours_median,omitempty"`
	PeerMed *Sample   `json:"peer_median,omitempty"`
	Ratio   float64   `json:"ratio,omitempty"`
	Ratios  []float64 `json:"ratios,omitempty"`
	Metric  string    `json:"metric,omitempty"`
	Target  string    `json:"target,omitempty"`
	Met     *bool     `json:"met,omitempty"`
	Skipped string    `json:"skipped,omitempty"`
	Note    string    `json:"note,omitempty"`
}

// value returns the figure a row's ratio is made of for s.
func (r Row) value(s Sample) float64 {
	if r.Metric == "cpu" {
		return s.CPUNsPerOp
	}
	return s.NsPerOp
}

// Compare runs c: Count alternating repetitions of both sides.
func Compare(ctx context.Context, cfg Config, c Comparison) Row {
	row := Row{Group: c.Group, Name: c.Name, Ours: c.Ours.Name, Peer: c.Peer.Name, Target: c.Target, Metric: c.Metric}
	var ours, peer []Sample
	for i := range max(cfg.Count, 1) {
		if err := ctx.Err(); err != nil {
			row.Skipped = "cancelled: " + err.Error()
			return row
		}
		o, err := c.Ours.Run(ctx, cfg)
		if err != nil {
			row.Skipped = reason(c.Ours.Name, err)
			return row
		}
		p, err := c.Peer.Run(ctx, cfg)
		if err != nil {
			// Our side still tells something: keep it.
			row.OursMed = &o
			row.Skipped = reason(c.Peer.Name, err)
			return row
		}
		ours, peer = append(ours, o), append(peer, p)
		cfg.logf("  %s / %s #%d: ours %.0f ns/op, peer %.0f ns/op", c.Group, c.Name, i+1, row.value(o), row.value(p))
	}
	om, pm := median(ours), median(peer)
	row.OursMed, row.PeerMed = &om, &pm
	for i := range ours {
		if v := row.value(ours[i]); v > 0 {
			row.Ratios = append(row.Ratios, row.value(peer[i])/v)
		}
	}
	row.Ratio = medianOf(row.Ratios)
	if c.MinRatio > 0 || c.MaxAllocs > 0 {
		met := row.Ratio >= c.MinRatio && (c.MaxAllocs == 0 || om.AllocsPerOp <= c.MaxAllocs)
		row.Met = &met
	}
	return row
}

func reason(side string, err error) string {
	if errors.Is(err, ErrSkip) {
		return fmt.Sprintf("%s: %v", side, err)
	}
	return fmt.Sprintf("%s failed: %v", side, err)
}

// median takes the median of each field independently.
func median(s []Sample) Sample {
	pick := func(f func(Sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		return medianOf(v)
	}
	return Sample{
		NsPerOp:     pick(func(s Sample) float64 { return s.NsPerOp }),
		MBPerS:      pick(func(s Sample) float64 { return s.MBPerS }),
		AllocsPerOp: pick(func(s Sample) float64 { return s.AllocsPerOp }),
		BytesPerOp:  pick(func(s Sample) float64 { return s.BytesPerOp }),
		CPUNsPerOp:  pick(func(s Sample) float64 { return s.CPUNsPerOp }),
		HasAllocs:   len(s) > 0 && s[0].HasAllocs,
	}
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
// throughput, b.SetBytes.
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
	// A benchmark that measures CPU itself (per item of a batch, say) wins
	// over the whole-run figure.
	if cpu, ok := r.Extra["cpu-ns/op"]; ok {
		s.CPUNsPerOp = cpu
	} else {
		s.CPUNsPerOp = r.Extra["proc-cpu-ns/op"]
	}
	return s, nil
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
