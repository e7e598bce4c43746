package reactor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// The workloads of testdata/bench_hg.py, which times Mercurial's reactors on
// the same inputs.
const (
	benchRequest  = "cbor:{b'name': b'heads', b'args': {b'foo': b'bar'}}"
	benchResponse = "cbor:{b'node': b'0123456789abcdef0123', b'rev': 42, b'tags': [b'tip', b'default']}"
)

var benchObjects = []any{
	map[hgcbor.Bytes]any{"node": []byte("0123456789abcdef0123"), "rev": 42},
	[]any{[]byte("a"), []byte("b"), []byte("c")},
}

func benchRequestFrames() []frame.Frame {
	var frames []frame.Frame
	for rid := 1; rid < 32768; rid += 2 {
		sf := "0"
		if rid == 1 {
			sf = "stream-begin"
		}
		frames = append(frames, ffs(fmt.Sprintf("%d 1 %s command-request new %s", rid, sf, benchRequest)))
	}
	return frames
}

// BenchmarkServerCommandRequest: single-frame command requests delivered.
func BenchmarkServerCommandRequest(b *testing.B) {
	frames := benchRequestFrames()
	b.SetBytes(int64(frames[1].Size()))
	b.ReportAllocs()
	b.ResetTimer()
	var r *ServerReactor
	for i := 0; i < b.N; i++ {
		k := i % len(frames)
		if k == 0 {
			r = NewServerReactor(ServerConfig{})
		}
		r.OnFrame(frames[k])
		if a := r.Next(); a.Kind != action.Deliver {
			b.Fatal(a)
		}
	}
}

// BenchmarkServerCommandRequestFeed: the same through bytes and the frame
// decoder.
func BenchmarkServerCommandRequestFeed(b *testing.B) {
	frames := benchRequestFrames()
	wires := make([][]byte, len(frames))
	for i, f := range frames {
		wires[i] = f.Append(nil)
	}
	b.SetBytes(int64(len(wires[1])))
	b.ReportAllocs()
	b.ResetTimer()
	var r *ServerReactor
	for i := 0; i < b.N; i++ {
		k := i % len(frames)
		if k == 0 {
			r = NewServerReactor(ServerConfig{})
		}
		r.Feed(wires[k])
		if a := r.Next(); a.Kind != action.Deliver {
			b.Fatal(a)
		}
		if a := r.Next(); a.Kind != action.WantMore {
			b.Fatal(a)
		}
	}
}

// BenchmarkServerRequestResponse: a command request in, its response out as
// frame bytes (identity encoding, as Mercurial's default).
func BenchmarkServerRequestResponse(b *testing.B) {
	frames := []frame.Frame{
		ffs("1 1 stream-begin command-request new " + benchRequest),
		ffs("3 1 0 command-request new " + benchRequest),
		ffs("1 1 0 command-request new " + benchRequest),
	}
	r := NewServerReactor(ServerConfig{})
	out := r.NewOutputStream()
	b.ReportAllocs()
	b.ResetTimer()
	var sent int
	for i := 0; i < b.N; i++ {
		f := frames[i&1]
		if i == 2 {
			f = frames[2]
		}
		r.OnFrame(f)
		a := r.Next()
		if a.Kind != action.Deliver {
			b.Fatal(a)
		}
		if err := r.RespondObjects(out, a.Value.RequestID, benchObjects...); err != nil {
			b.Fatal(err)
		}
		a = r.Next()
		if a.Kind != action.Send {
			b.Fatal(a)
		}
		sent = len(a.Bytes)
	}
	b.SetBytes(int64(sent))
}

// BenchmarkClientResponseFrames: command-response frames delivered.
func BenchmarkClientResponseFrames(b *testing.B) {
	c := NewClientReactor(ClientConfig{MultipleSends: true, Immediate: true})
	if _, err := c.CallCommand(Request{Name: "heads"}); err != nil {
		b.Fatal(err)
	}
	drain(c.Next)
	c.OnFrame(ffs("1 2 stream-begin command-response continuation " + benchResponse))
	drain(c.Next)
	f := ffs("1 2 0 command-response continuation " + benchResponse)
	b.SetBytes(int64(f.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.OnFrame(f)
		if a := c.Next(); a.Kind != action.Deliver {
			b.Fatal(a)
		}
	}
}

// BenchmarkClientResponseFramesFeed: the same through bytes.
func BenchmarkClientResponseFramesFeed(b *testing.B) {
	c := NewClientReactor(ClientConfig{MultipleSends: true, Immediate: true})
	if _, err := c.CallCommand(Request{Name: "heads"}); err != nil {
		b.Fatal(err)
	}
	drain(c.Next)
	c.Feed(frameBytes("1 2 stream-begin command-response continuation " + benchResponse))
	drain(c.Next)
	wire := frameBytes("1 2 0 command-response continuation " + benchResponse)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Feed(wire)
		if a := c.Next(); a.Kind != action.Deliver {
			b.Fatal(a)
		}
		if a := c.Next(); a.Kind != action.WantMore {
			b.Fatal(a)
		}
	}
}

// TestCompareWithMercurial runs the benchmarks above and Mercurial's
// reactors on the same workloads (testdata/bench_hg.py) and prints the
// ratios. It measures, it does not assert: run it on a quiet machine with
//
//	WIREREACTOR_BENCH=1 go test -run TestCompareWithMercurial -v ./reactor
func TestCompareWithMercurial(t *testing.T) {
	if os.Getenv("WIREREACTOR_BENCH") != "1" {
		t.Skip("set WIREREACTOR_BENCH=1 to time the reactors against Mercurial's")
	}
	py := mercurialPython(t)
	out, err := exec.Command(py, "testdata/bench_hg.py", "1").Output()
	require.NoError(t, err)
	var hg map[string]float64
	require.NoError(t, json.Unmarshal(out, &hg))
	rows := []struct {
		name, key string
		bench     func(*testing.B)
		target    float64
	}{
		{"server: single-frame command request delivered", "server_request", BenchmarkServerCommandRequest, 30},
		{"server: request -> response frame bytes", "server_cycle", BenchmarkServerRequestResponse, 50},
		{"client: command-response frame delivered", "client_frame", BenchmarkClientResponseFrames, 30},
	}
	for _, row := range rows {
		res := testing.Benchmark(row.bench)
		goNs := float64(res.T.Nanoseconds()) / float64(res.N)
		t.Logf("%-48s go %8.0f ns/op %3d allocs/op | mercurial %9.0f ns/op | %6.1fx (target %.0fx)",
			row.name, goNs, res.AllocsPerOp(), hg[row.key], hg[row.key]/goNs, row.target)
	}
}
