package qmptest_test

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// BenchmarkIdleConnection measures the server's memory per idle, negotiated
// connection (heap and goroutine stacks; the raw clients' share is small and
// included), for the scale runs that hold 10,000 of them.
//
//	go test -run='^$' -bench=BenchmarkIdleConnection -benchtime=1000x ./qmp/qmptest
func BenchmarkIdleConnection(b *testing.B) {
	s := qmptest.StartUnix(b, qmptest.Config{MultiClient: true})
	path := strings.TrimPrefix(s.Addr(), "unix:")
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	buf := make([]byte, 4096)
	for range b.N {
		nc, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, nc)
		r := bufio.NewReaderSize(nc, 16)
		if _, err := r.ReadSlice('\n'); err != nil && err != bufio.ErrBufferFull {
			b.Fatal(err)
		}
		if _, err := nc.Write([]byte(`{"execute": "qmp_capabilities"}`)); err != nil {
			b.Fatal(err)
		}
		for {
			// Drain the rest of the greeting and the negotiation reply.
			n, err := nc.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(string(buf[:n]), `"return"`) {
				break
			}
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := (after.HeapInuse + after.StackInuse) - (before.HeapInuse + before.StackInuse)
	b.ReportMetric(float64(used)/float64(b.N), "bytes/conn")
	b.ReportMetric(float64(s.Connections()), "conns")
}
