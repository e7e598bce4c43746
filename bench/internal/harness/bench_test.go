package harness

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	ServeChildIfAsked() // the QMP rows re-execute this binary as their server
	os.Exit(m.Run())
}

func TestMedianOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, medianOf(tt.in), "%v", tt.in)
	}
}

// fixed returns a side whose samples are ns, one per call, and records the
// order of the calls in log.
func fixed(name string, log *[]string, ns ...float64) Side {
	i := 0
	return Side{name, func(context.Context, Config) (Sample, error) {
		*log = append(*log, name)
		i++
		return Sample{NsPerOp: ns[i-1], CPUNsPerOp: ns[i-1] / 2}, nil
	}}
}

// TestCompareInterleavesAndPairs: every repetition runs ours then each
// peer; each row's ratio is the median of per-repetition ratios (noise that
// hits both sides of one repetition cancels), with min and max.
func TestCompareInterleavesAndPairs(t *testing.T) {
	var log []string
	rows := Compare(context.Background(), Config{Count: 3}, Comparison{
		Group: "g", Name: "c",
		Ours:   fixed("ours", &log, 10, 100, 20),
		Peers:  []Side{fixed("a", &log, 30, 300, 80), fixed("b", &log, 20, 500, 20)},
		CPUToo: true, BestOf: []string{"a", "b"},
	})
	require.Equal(t, []string{"ours", "a", "b", "ours", "a", "b", "ours", "a", "b"}, log)
	require.Len(t, rows, 5)
	a := rows[0]
	require.Equal(t, "g/c vs a", a.ID)
	require.Equal(t, []float64{3, 3, 4}, a.Ratios)
	require.Equal(t, 3.0, a.Ratio)
	require.Equal(t, 3.0, a.Min)
	require.Equal(t, 4.0, a.Max)
	require.Equal(t, 20.0, a.OursMed.NsPerOp)
	require.Equal(t, "g/c vs b", rows[1].ID)
	require.Equal(t, []float64{2, 5, 1}, rows[1].Ratios)
	// The CPU rows compare the same runs' CPU figures.
	require.Equal(t, "g/c"+CPUSuffix+" vs a", rows[2].ID)
	require.Equal(t, "cpu", rows[2].Metric)
	require.Equal(t, []float64{3, 3, 4}, rows[2].Ratios)
	// Best of a and b: the faster of the two in each repetition.
	best := rows[4]
	require.Equal(t, "g/c vs best of a, b", best.ID)
	require.Equal(t, []float64{2, 3, 1}, best.Ratios)
	require.Equal(t, 2.0, best.Ratio)
}

func TestCompareSideFailureIsReported(t *testing.T) {
	var log []string
	rows := Compare(context.Background(), Config{Count: 2}, Comparison{
		Ours: Side{"ours", func(context.Context, Config) (Sample, error) { return Sample{}, errors.New("boom") }},
		Peers: []Side{fixed("peer", &log, 1, 1), {"missing", func(context.Context, Config) (Sample, error) {
			return Sample{}, Skip("not installed")
		}}},
	})
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Equal(t, "ours failed: boom", r.Skipped)
		require.Nil(t, r.OursMed)
		require.Nil(t, r.Met)
	}
}

// TestMissingPeerIsSkippedNotMadeUp: a missing peer's row carries the
// reason and no figure; the other peers' rows are measured.
func TestMissingPeerIsSkippedNotMadeUp(t *testing.T) {
	var log []string
	rows := Compare(context.Background(), Config{Count: 2}, Comparison{
		Group: "g", Name: "c",
		Ours: fixed("ours", &log, 10, 10),
		Peers: []Side{{"missing", func(context.Context, Config) (Sample, error) {
			return Sample{}, Skip("not installed")
		}}, fixed("peer", &log, 20, 20)},
		BestOf: []string{"missing"},
	})
	require.Equal(t, "missing: skipped: not installed", rows[0].Skipped)
	require.Nil(t, rows[0].PeerMed)
	require.Zero(t, rows[0].Ratio)
	require.Equal(t, 2.0, rows[1].Ratio)
	require.NotEmpty(t, rows[2].Skipped, "best of a missing peer")
	require.Zero(t, rows[2].Ratio)
}

// TestVerdictsComeFromTargets: a row whose ID is in Targets is judged by
// it, including the cap on our own figure.
func TestVerdictsComeFromTargets(t *testing.T) {
	id := RowID("frame", "decode 64 B", peerHgReadframe)
	tg, ok := TargetFor(id)
	require.True(t, ok)
	judged := func(ours, peer float64) Row {
		r := Row{ID: id, Metric: "cpu", OursMed: &Sample{CPUNsPerOp: ours}, Ratio: peer / ours}
		judge(&r)
		return r
	}
	r := judged(8, 8*tg.MinRatio)
	require.True(t, *r.Met)
	require.Equal(t, tg.Text, r.Target)
	require.False(t, *judged(8, 8*tg.MinRatio*0.9).Met, "ratio below target")
	require.False(t, *judged(12, 12*tg.MinRatio*2).Met, "our time above the cap")

	r = Row{ID: "g/no target vs x", Ratio: 100, OursMed: &Sample{}}
	judge(&r)
	require.Nil(t, r.Met)
	require.Empty(t, r.Target)
}

// TestEveryTargetHasItsRow: every target names a row the report makes, and
// once: a renamed case or peer cannot leave a goal silently unjudged.
func TestEveryTargetHasItsRow(t *testing.T) {
	ids := map[string]int{}
	var all []Comparison
	for _, cs := range [][]Comparison{FrameComparisons(), ReactorComparisons(), QMPComparisons(), TransportComparisons()} {
		all = append(all, cs...)
	}
	for _, c := range all {
		for _, p := range c.Peers {
			ids[RowID(c.Group, c.Name, p.Name)]++
			if c.CPUToo {
				ids[RowID(c.Group, c.Name+CPUSuffix, p.Name)]++
			}
		}
		if len(c.BestOf) > 0 {
			ids[RowID(c.Group, c.Name, BestName(c.BestOf))]++
			for _, name := range c.BestOf {
				found := false
				for _, p := range c.Peers {
					found = found || p.Name == name
				}
				require.True(t, found, "%s/%s: best of names unknown peer %s", c.Group, c.Name, name)
			}
		}
	}
	for id, n := range ids {
		require.Equal(t, 1, n, "row %s made %d times", id, n)
	}
	seen := map[string]bool{}
	for _, tg := range Targets {
		require.Contains(t, ids, tg.Row, "target of issue %d names no row", tg.Issue)
		require.False(t, seen[tg.Row], "two targets for %s", tg.Row)
		seen[tg.Row] = true
		require.Positive(t, tg.MinRatio, tg.Row)
		require.Contains(t, []int{11, 12}, tg.Issue, tg.Row)
	}
}

func sampleReport() *Report {
	met, notMet := true, false
	return &Report{
		Started: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC), Duration: "5m0s", Command: "go run ./bench/cmd/report",
		Machine: Machine{CPU: "Test CPU", Cores: 2, GOMAXPROCS: 2, Kernel: "Linux 6", GoVersion: "go1.26", LoadAvg: "1.00 2.00 3.00"},
		LoadEnd: "1.50 2.00 3.00", Peers: map[string]string{"Mercurial": "6.3.2"}, Count: 3,
		Rows: []Row{
			{ID: "reactor/a vs hg", Group: "reactor", Name: "a", Ours: "ours", Peer: "hg", Metric: "cpu",
				OursMed: &Sample{NsPerOp: 10, CPUNsPerOp: 10}, PeerMed: &Sample{NsPerOp: 400, CPUNsPerOp: 400},
				Ratio: 40, Min: 35, Max: 45, Ratios: []float64{35, 40, 45}, Target: "≥ 30", MinRatio: 30, Met: &met},
			{ID: "qmp/b vs raw", Group: "qmp", Name: "b", Ours: "ours", Peer: "raw | mux",
				OursMed: &Sample{NsPerOp: 10, Counted: true}, PeerMed: &Sample{NsPerOp: 8, Counted: true, Errors: 1, Crossed: 2},
				Ratio: 0.8, Min: 0.7, Max: 0.9, Ratios: []float64{0.7, 0.8, 0.9}, Target: "≥ 1", MinRatio: 1, Met: &notMet},
			{ID: "ws/c vs coder", Group: "ws", Name: "c", Ours: "ours", Peer: "coder", Skipped: "coder: skipped: not built",
				Target: "≥ 1", MinRatio: 1},
		},
	}
}

func TestMarkdownAndSVG(t *testing.T) {
	r := sampleReport()
	var md bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&md, "chart.svg"))
	for _, want := range []string{
		"Measured 2026-12-06 08:00 UTC on Test CPU", "load average 1.00 2.00 3.00 at start, 1.50 2.00 3.00 at end",
		"median of 3 interleaved runs", "`go run ./bench/cmd/report`", "](chart.svg)",
		"| reactor | a | ours: 10 ns CPU (wall 10 ns) | hg: 400 ns CPU (wall 400 ns) | 40.0× (35.0–45.0) | ≥ 30 met |",
		"raw \\| mux: 8.00 ns; 1 errors, 2 crossed", "| 0.80× (0.70–0.90) | ≥ 1 NOT met |",
		"| skipped: coder: skipped: not built | skipped | ≥ 1 |",
	} {
		require.Contains(t, md.String(), want)
	}
	var svg bytes.Buffer
	require.NoError(t, r.WriteSVG(&svg))
	s := svg.String()
	require.True(t, strings.HasPrefix(s, "<svg "), s)
	require.True(t, strings.HasSuffix(s, "</svg>\n"))
	require.Equal(t, 2, strings.Count(s, "<circle"), "a dot per measured targeted row")
	require.Contains(t, s, `fill="#2e7d32"`)
	require.Contains(t, s, `fill="#c62828"`)
	require.Contains(t, s, "skipped")
	require.Contains(t, s, "raw | mux")
}

func TestRewriteReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	before := "# title\n\nintro\n\n" + ReadmeBegin + "\nold table\n" + ReadmeEnd + "\n\n## After\n"
	require.NoError(t, os.WriteFile(path, []byte(before), 0o644))
	r := sampleReport()
	require.NoError(t, r.RewriteReadme(path, "bench/results/report.svg"))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(got), "# title\n\nintro\n\n"+ReadmeBegin+"\n\nMeasured "), string(got))
	require.True(t, strings.HasSuffix(string(got), "\n\n"+ReadmeEnd+"\n\n## After\n"), string(got))
	require.NotContains(t, string(got), "old table")
	require.Contains(t, string(got), "](bench/results/report.svg)")

	// Rewriting again is stable.
	require.NoError(t, r.RewriteReadme(path, "bench/results/report.svg"))
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(got), string(again))

	require.NoError(t, os.WriteFile(path, []byte("# no markers\n"), 0o644))
	require.ErrorIs(t, r.RewriteReadme(path, ""), ErrNoMarkers)
}

// TestQMPRowsAgainstTheResponder runs the responder rows briefly: the
// server is a child process, and every reply is checked.
func TestQMPRowsAgainstTheResponder(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	cfg := QuickConfig()
	cfg.Count = 1
	cfg.Go = "none" // the bench/peers rows are covered by the report's end-to-end test
	t.Cleanup(peersBin.cleanup)
	for _, c := range QMPComparisons() {
		if c.Name != qmpResponderSeq && c.Name != qmpResponderPar {
			continue
		}
		for _, row := range Compare(context.Background(), cfg, c) {
			if strings.HasPrefix(row.Peer, peerBufio) {
				require.Empty(t, row.Skipped, row.ID)
				require.Positive(t, row.Ratio, row.ID)
				if c.Name == qmpResponderPar {
					require.True(t, row.OursMed.Counted, row.ID)
					require.Zero(t, row.OursMed.Errors+row.OursMed.Crossed, row.ID)
					require.Zero(t, row.PeerMed.Errors+row.PeerMed.Crossed, row.ID)
				}
			} else {
				require.Contains(t, row.Skipped, "-go none", row.ID)
			}
		}
	}
}

// TestSetupIsOutsideTheCPUWindow: a benchmark that reports its own CPU
// window (startCPU) is charged for its loop only, however costly its setup
// (as the server-request benchmark's 16,384 frames once were).
func TestSetupIsOutsideTheCPUWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU for over half a second")
	}
	burn := func(d time.Duration) {
		for start := cpuNow(); cpuNow()-start < d; {
		}
	}
	var x int
	work := func() { // about a microsecond
		for i := range 2000 {
			x += i * i
		}
	}
	loopOnly, err := GoBench(Config{BenchTime: 20 * time.Millisecond}, func(b *testing.B) {
		work()
		burn(300 * time.Millisecond) // setup
		stop := startCPU(b)
		for b.Loop() {
			work()
		}
		stop()
	})
	require.NoError(t, err)
	whole, err := GoBench(Config{BenchTime: 20 * time.Millisecond}, func(b *testing.B) {
		work()
		burn(300 * time.Millisecond)
		for b.Loop() {
			work()
		}
	})
	require.NoError(t, err)
	// 300 ms of setup spread over the ops of a 20 ms run adds many times
	// an op's cost to each, unless the window leaves it out.
	require.Less(t, 3*loopOnly.CPUNsPerOp, whole.CPUNsPerOp, "loop only %+v, whole %+v", loopOnly, whole)
}

// TestConcurrentLoopTimesOnlyTheCalls: the 8-goroutine QMP rows dial before
// the loop; b.RunParallel does not restart the clock as b.Loop does, so
// loopCPU must, or the dial counts as time per call. Calls that return the
// wrong reply are counted as crossed, not timed.
func TestConcurrentLoopTimesOnlyTheCalls(t *testing.T) {
	var calls atomic.Int64
	s, err := GoBench(Config{BenchTime: 20 * time.Millisecond}, func(b *testing.B) {
		time.Sleep(50 * time.Millisecond) // the dial and handshake
		loopCPU(b, 8, func(cmd string) ([]byte, error) {
			if calls.Add(1)%100 == 0 {
				return []byte(`{"other": 1}`), nil // a reply that is not this command's
			}
			if cmd == "query-status" {
				return []byte(`{"status": "running"}`), nil
			}
			return []byte(`{"name": "bench"}`), nil
		})
	})
	require.NoError(t, err)
	require.Less(t, s.NsPerOp, 20000.0, "%+v", s)
	require.True(t, s.Counted)
	require.Positive(t, s.Crossed)
	require.Zero(t, s.Errors)
}
