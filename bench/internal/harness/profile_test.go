package harness

import "testing"

// Benchmarks of our sides alone, for profiling with go test -bench
// -cpuprofile (the report runs them through testing.Benchmark).

func BenchmarkServerRequest(b *testing.B) { benchServerRequest(b) }
func BenchmarkServerCycle(b *testing.B)   { benchServerCycle(b) }
func BenchmarkClientFrames(b *testing.B)  { benchClientFrames(b) }

func BenchmarkMachinePump(b *testing.B) { benchMachinePump(b) }

// The sequential responder row's two sides, for profiling the client:
// go test -run '^$' -bench Responder -cpuprofile cpu.out ./bench/internal/harness
func BenchmarkResponderOurs(b *testing.B)  { benchAgainstResponder(b, benchOursParallel(1)) }
func BenchmarkResponderBufio(b *testing.B) { benchAgainstResponder(b, benchBufioParallel(1)) }

func benchAgainstResponder(b *testing.B, f func(b *testing.B, path string)) {
	t, err := startResponder(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer t.stop()
	f(b, t.path)
}

// The sequential QEMU row's two sides (QEMU must be installed).
func BenchmarkQEMUOurs(b *testing.B)  { benchAgainstQEMU(b, benchOursParallel(1)) }
func BenchmarkQEMUBufio(b *testing.B) { benchAgainstQEMU(b, benchBufioParallel(1)) }

func benchAgainstQEMU(b *testing.B, f func(b *testing.B, path string)) {
	t, err := startQEMU(b.Context(), Config{})
	if err != nil {
		b.Skip(err)
	}
	defer t.stop()
	f(b, t.path)
}

// The 8-goroutine responder row, and the unix and tcp round trip rows.
func BenchmarkResponderOurs8(b *testing.B)    { benchAgainstResponder(b, benchOursParallel(8)) }
func BenchmarkUnixRoundTripOurs(b *testing.B) { benchSessionRoundTrip(b, transportKinds[0]) }
func BenchmarkUnixRoundTripRaw(b *testing.B)  { benchRawRoundTrip(b, transportKinds[0]) }
func BenchmarkTCPRoundTripOurs(b *testing.B)  { benchSessionRoundTrip(b, transportKinds[1]) }
func BenchmarkTCPRoundTripRaw(b *testing.B)   { benchRawRoundTrip(b, transportKinds[1]) }

// The bulk rows' two sides.
func BenchmarkUnixBulkOurs(b *testing.B) { benchSessionBulk(b, transportKinds[0]) }
func BenchmarkUnixBulkRaw(b *testing.B)  { benchRawBulk(b, transportKinds[0]) }
func BenchmarkTCPBulkOurs(b *testing.B)  { benchSessionBulk(b, transportKinds[1]) }
func BenchmarkTCPBulkRaw(b *testing.B)   { benchRawBulk(b, transportKinds[1]) }
