package reactor

import (
	"fmt"
	"testing"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// The workloads below are the same as those of testdata/bench_hg.py, which
// times Mercurial's reactors on identical inputs. Each workload is a
// function that performs n operations, so that the benchmarks and the
// side-by-side comparison (compare_test.go) time exactly the same code.
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

// workload prepares its inputs once and returns a function doing n
// operations; the function panics if the reactor answers unexpectedly.
type workload func() func(n int)

// serverRequests: a decoded single-frame command request handed to a server
// reactor until it delivers the Command (Mercurial: onframerecv until
// runcommand). A fresh reactor every 16384 requests, when request ids run out.
func serverRequests() func(n int) {
	frames := benchRequestFrames()
	return func(n int) {
		var r *ServerMachine
		for i := 0; i < n; i++ {
			k := i % len(frames)
			if k == 0 {
				r = NewServerMachine(ServerMachineConfig{})
			}
			r.OnFrame(frames[k])
			if a := r.Next(); a.Kind != action.KindDeliver {
				panic(a)
			}
		}
	}
}

// serverRequestsFeed: serverRequests through bytes and the frame decoder.
func serverRequestsFeed() func(n int) {
	frames := benchRequestFrames()
	wires := make([][]byte, len(frames))
	for i, f := range frames {
		wires[i] = f.Append(nil)
	}
	return func(n int) {
		var r *ServerMachine
		for i := 0; i < n; i++ {
			k := i % len(frames)
			if k == 0 {
				r = NewServerMachine(ServerMachineConfig{})
			}
			r.Feed(wires[k])
			if a := r.Next(); a.Kind != action.KindDeliver {
				panic(a)
			}
			if a := r.Next(); a.Kind != action.KindWantMore {
				panic(a)
			}
		}
	}
}

// serverCycle: a decoded command request in, then the response objects out
// as frame bytes, identity encoded (Mercurial: onframerecv, then
// oncommandresponsereadyobjects and its frame generator joined to bytes).
// Request ids alternate between 1 and 3, so each is finished before reuse.
func serverCycle() func(n int) {
	frames := []frame.Frame{
		ffs("1 1 stream-begin command-request new " + benchRequest),
		ffs("3 1 0 command-request new " + benchRequest),
		ffs("1 1 0 command-request new " + benchRequest),
	}
	r := NewServerMachine(ServerMachineConfig{})
	out := r.NewOutputStream()
	i := 0
	return func(n int) {
		for end := i + n; i < end; i++ {
			f := frames[i&1]
			if i >= 2 && i&1 == 0 {
				f = frames[2]
			}
			r.OnFrame(f)
			a := r.Next()
			if a.Kind != action.KindDeliver {
				panic(a)
			}
			if err := r.RespondObjects(out, a.Value.RequestID, benchObjects...); err != nil {
				panic(err)
			}
			if a = r.Next(); a.Kind != action.KindSend || len(a.Bytes) == 0 {
				panic(a)
			}
		}
	}
}

// responseClient returns a client reactor with request 1 active and its
// response stream begun, by a frame handed over decoded or as bytes.
func responseClient(asBytes bool) *ClientMachine {
	c := NewClientMachine(ClientMachineConfig{MultipleSends: true, Immediate: true})
	if _, err := c.CallCommand(Request{Name: "heads"}); err != nil {
		panic(err)
	}
	actiontest.Drain(c)
	first := "1 2 stream-begin command-response continuation " + benchResponse
	if asBytes {
		c.Feed(frameBytes(first))
	} else {
		c.OnFrame(ffs(first))
	}
	actiontest.Drain(c)
	return c
}

func frameSize(human string) int {
	f := ffs(human)
	return f.Size()
}

// clientFrames: a decoded command-response continuation frame handed to a
// client reactor until it delivers the response data, not CBOR-decoded —
// the client hands the payload on, as Mercurial's responsedata does.
func clientFrames() func(n int) {
	c := responseClient(false)
	f := ffs("1 2 0 command-response continuation " + benchResponse)
	return func(n int) {
		for i := 0; i < n; i++ {
			c.OnFrame(f)
			if a := c.Next(); a.Kind != action.KindDeliver {
				panic(a)
			}
		}
	}
}

// clientFramesFeed: clientFrames through bytes and the frame decoder.
func clientFramesFeed() func(n int) {
	c := responseClient(true)
	wire := frameBytes("1 2 0 command-response continuation " + benchResponse)
	return func(n int) {
		for i := 0; i < n; i++ {
			c.Feed(wire)
			if a := c.Next(); a.Kind != action.KindDeliver {
				panic(a)
			}
			if a := c.Next(); a.Kind != action.KindWantMore {
				panic(a)
			}
		}
	}
}

func runWorkload(b *testing.B, w workload, bytesPerOp int) {
	run := w()
	b.SetBytes(int64(bytesPerOp))
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
}

func BenchmarkServerCommandRequest(b *testing.B) {
	runWorkload(b, serverRequests, frameSize("3 1 0 command-request new "+benchRequest))
}

func BenchmarkServerCommandRequestFeed(b *testing.B) {
	runWorkload(b, serverRequestsFeed, frameSize("3 1 0 command-request new "+benchRequest))
}

func BenchmarkServerRequestResponse(b *testing.B) {
	runWorkload(b, serverCycle, frameSize("3 1 0 command-request new "+benchRequest))
}

func BenchmarkClientResponseFrames(b *testing.B) {
	runWorkload(b, clientFrames, frameSize("1 2 0 command-response continuation "+benchResponse))
}

func BenchmarkClientResponseFramesFeed(b *testing.B) {
	runWorkload(b, clientFramesFeed, frameSize("1 2 0 command-response continuation "+benchResponse))
}
