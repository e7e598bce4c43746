package bench_test

import (
	"context"
	"fmt"

	"github.com/wirereactor/wirereactor/bench"
)

// A comparison pairs our side with a peer's; Compare runs both Count times,
// alternating, and reports the medians and the ratio (peer time ÷ ours).
func ExampleCompare() {
	fixed := func(ns float64) func(context.Context, bench.Config) (bench.Sample, error) {
		return func(context.Context, bench.Config) (bench.Sample, error) { return bench.Sample{NsPerOp: ns}, nil }
	}
	row := bench.Compare(context.Background(), bench.Config{Count: 3}, bench.Comparison{
		Group: "demo", Name: "fixed timings",
		Ours:   bench.Side{Name: "ours", Run: fixed(20)},
		Peer:   bench.Side{Name: "peer", Run: fixed(600)},
		Target: "≥ 30", MinRatio: 30,
	})
	fmt.Printf("%s: %.0f× (target %s met: %v)\n", row.Name, row.Ratio, row.Target, *row.Met)

	missing := bench.Compare(context.Background(), bench.Config{Count: 3}, bench.Comparison{
		Group: "demo", Name: "missing peer",
		Ours: bench.Side{Name: "ours", Run: fixed(20)},
		Peer: bench.Side{Name: "peer", Run: func(context.Context, bench.Config) (bench.Sample, error) {
			return bench.Sample{}, bench.Skip("peer not installed")
		}},
	})
	fmt.Println(missing.Skipped)
	// Output:
	// fixed timings: 30× (target ≥ 30 met: true)
	// peer: skipped: peer not installed
}
