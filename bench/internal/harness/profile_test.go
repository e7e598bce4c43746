package harness

import "testing"

// Benchmarks of our sides alone, for profiling with go test -bench
// -cpuprofile (the report runs them through testing.Benchmark).

func BenchmarkServerRequest(b *testing.B) { benchServerRequest(b) }
func BenchmarkServerCycle(b *testing.B)   { benchServerCycle(b) }
func BenchmarkClientFrames(b *testing.B)  { benchClientFrames(b) }

func BenchmarkMachinePump(b *testing.B) { benchMachinePump(b) }
