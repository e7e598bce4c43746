//go:build unix

package reactor

import (
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testpeers"
)

// cpuTime is the CPU time (user + system) this process has used: on a
// machine shared with other work, wall time measures the neighbours too.
// testdata/bench_hg.py uses time.process_time, the same clock for Python.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeWorkload does what bench_hg.py's timeit does: n = 1, 2, 4, … until
// one run takes at least minCPU of CPU time; it returns that run's CPU
// nanoseconds and heap allocations per operation.
func timeWorkload(w workload, minCPU time.Duration) (nsPerOp, allocsPerOp float64) {
	run := w()
	var ms runtime.MemStats
	for n := 1; ; n *= 2 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		mallocs := ms.Mallocs
		start := cpuTime()
		run(n)
		elapsed := cpuTime() - start
		if elapsed >= minCPU {
			runtime.ReadMemStats(&ms)
			return float64(elapsed.Nanoseconds()) / float64(n), float64(ms.Mallocs-mallocs) / float64(n)
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestCompareWithMercurial times our reactors and Mercurial 6.3's
// (testdata/bench_hg.py) on the same workloads and prints the ratios. It
// measures, it does not assert. Both sides:
//   - start from already decoded frames (Mercurial's frame objects, our
//     frame.Frame values), the same payloads, and stop at the same point
//     (runcommand / Deliver, the response joined to bytes / Send,
//     responsedata / Deliver);
//   - are timed in process CPU time (time.process_time, getrusage), which
//     includes each side's garbage collector but not the other processes
//     on a loaded machine; Python's interpreter start-up, imports, input
//     construction and JSON output are outside the timed region;
//   - double the operation count until one run takes WIREREACTOR_BENCH_SECONDS
//     (default 0.5) of CPU and report that run per operation;
//   - run WIREREACTOR_BENCH_REPS times (default 5), interleaved (Python,
//     then Go, per repetition); the table shows medians and the range.
//
// Rows:
//
//	server request  serverRequests vs bench_hg.py requests
//	server cycle    serverCycle vs cycle
//	client frame    clientFrames vs client_frames
//
// Run it with
//
//	WIREREACTOR_BENCH=1 go test -run TestCompareWithMercurial -v ./reactor
func TestCompareWithMercurial(t *testing.T) {
	if os.Getenv("WIREREACTOR_BENCH") != "1" {
		t.Skip("set WIREREACTOR_BENCH=1 to time the reactors against Mercurial's")
	}
	py := testpeers.MercurialPython(t)
	seconds, reps := 0.5, 5
	if s := os.Getenv("WIREREACTOR_BENCH_SECONDS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		seconds = v
	}
	if s := os.Getenv("WIREREACTOR_BENCH_REPS"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err)
		reps = v
	}
	rows := []struct {
		name, key string
		work      workload
		target    float64
		goNs, hg  []float64
		allocs    float64
	}{
		{name: "server: single-frame command request delivered", key: "server_request", work: serverRequests, target: 30},
		{name: "server: request -> response frame bytes", key: "server_cycle", work: serverCycle, target: 50},
		{name: "client: command-response frame delivered", key: "client_frame", work: clientFrames, target: 30},
	}
	minCPU := time.Duration(seconds * float64(time.Second))
	for rep := 0; rep < reps; rep++ {
		out, err := exec.Command(py, "testdata/bench_hg.py", strconv.FormatFloat(seconds, 'f', -1, 64)).Output()
		require.NoError(t, err)
		var hg map[string]float64
		require.NoError(t, json.Unmarshal(out, &hg))
		for i := range rows {
			require.Contains(t, hg, rows[i].key)
			rows[i].hg = append(rows[i].hg, hg[rows[i].key])
			ns, allocs := timeWorkload(rows[i].work, minCPU)
			rows[i].goNs = append(rows[i].goNs, ns)
			rows[i].allocs = allocs
		}
	}
	for _, r := range rows {
		ratios := make([]float64, reps)
		for i := range ratios {
			ratios[i] = r.hg[i] / r.goNs[i]
		}
		t.Logf("%-48s go %7.0f ns/op %4.1f allocs/op | mercurial %7.0f ns/op | %5.1fx (%.1f-%.1f) target %.0fx",
			r.name, median(r.goNs), r.allocs, median(r.hg), median(ratios), slices.Min(ratios), slices.Max(ratios), r.target)
	}
}
