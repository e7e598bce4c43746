package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/wirereactor/wirereactor/internal/testpeers"
)

// benchmarkPiped runs b.N query-status lines through one piped session:
// parse, execute, pretty-print — the cost of the shell per command.
func benchmarkPiped(b *testing.B, addr ...string) {
	input := strings.Repeat("query-status\n", b.N)
	b.SetBytes(int64(len("query-status\n")))
	b.ReportAllocs()
	b.ResetTimer()
	if code := run(context.Background(), append([]string{"-history", ""}, addr...), strings.NewReader(input), io.Discard, io.Discard); code != 0 {
		b.Fatalf("exit status %d", code)
	}
}

func BenchmarkPipedSimulator(b *testing.B) { benchmarkPiped(b) }

func BenchmarkPipedQEMU(b *testing.B) {
	q := testpeers.StartQEMU(b)
	benchmarkPiped(b, "unix:"+q.Socket)
}
