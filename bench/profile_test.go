package bench

import "testing"

// Benchmarks of our sides alone, for profiling with go test -bench
// -cpuprofile (the report runs them through testing.Benchmark).

func BenchmarkServerDeliver(b *testing.B) {
	benchServerDeliver(b, newReactorCase("server_deliver", commandRequests(reactorBatch)))
}

func BenchmarkServerCycle(b *testing.B) {
	c := newReactorCase("server_cycle", commandRequests(reactorBatch))
	c.object = cycleObject()
	benchServerCycle(b, c)
}

func BenchmarkClientFrames(b *testing.B) {
	benchClientFrames(b, newReactorCase("client_frames", responseFrames(reactorBatch, 64)))
}

func BenchmarkMachinePump(b *testing.B) { benchMachinePump(b) }
