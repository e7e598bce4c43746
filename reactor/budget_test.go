package reactor

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// intsRequest is the payload of a command request whose argument a is an
// array of n one-byte integers: sixteen bytes of memory per wire byte once
// decoded into interfaces.
func intsRequest(n int) []byte {
	p := hgcbor.AppendHead(nil, hgcbor.MajorMap, 2)
	p = hgcbor.AppendBytes(p, []byte("args"))
	p = hgcbor.AppendHead(p, hgcbor.MajorMap, 1)
	p = hgcbor.AppendBytes(p, []byte("a"))
	p = hgcbor.AppendHead(p, hgcbor.MajorArray, uint64(n))
	p = append(p, bytes.Repeat([]byte{1}, n)...)
	p = hgcbor.AppendBytes(p, []byte("name"))
	return hgcbor.AppendBytes(p, []byte("x"))
}

func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestServerDecodedBudget: a request whose CBOR would decode to many times
// its size (an 8 MiB array of one-byte integers: 128 MiB of interfaces, a
// 60 MB one grew the heap by 2.3 GiB) is an Error wrapping action.ErrLimit
// and an *action.LimitError, raised before the memory is allocated.
func TestServerDecodedBudget(t *testing.T) {
	payload := intsRequest(8 << 20)
	r := NewServerMachine(ServerMachineConfig{})
	var a action.Action[Command]
	n := allocatedBy(func() {
		r.OnFrame(frame.Frame{RequestID: 1, StreamID: 1, StreamFlags: frame.StreamFlagBegin,
			Type: frame.TypeCommandRequest, Flags: frame.FlagCommandRequestNew, Payload: payload})
		a = r.Next()
	})
	require.Equal(t, action.KindError, a.Kind, "%v", a)
	require.ErrorIs(t, a.Err, action.ErrLimit)
	var le *action.LimitError
	require.ErrorAs(t, a.Err, &le)
	require.Equal(t, hgcbor.DefaultDecodedSize(len(payload)), le.Limit)
	require.Less(t, n, uint64(1<<20), "allocated %d bytes for a %d-byte request", n, len(payload))
	t.Logf("%d-byte request: %v; allocated %d bytes", len(payload), a.Err, n)

	// The same through bytes, in frames of the default size.
	r = NewServerMachine(ServerMachineConfig{})
	var wire []byte
	s := newOutputStream(1, frame.DefaultMaxPayload)
	for p, first := payload, true; len(p) > 0; first = false {
		c := min(len(p), frame.DefaultMaxPayload)
		fl := frame.FlagCommandRequestContinuation
		if first {
			fl = frame.FlagCommandRequestNew
		}
		if c < len(p) {
			fl |= frame.FlagCommandRequestMoreFrames
		}
		var err error
		wire, err = s.AppendFrame(wire, 1, frame.TypeCommandRequest, fl, p[:c], false)
		require.NoError(t, err)
		p = p[c:]
	}
	r.Feed(wire)
	got := actiontest.Drain[Command](r)
	require.Len(t, got, 1)
	require.ErrorAs(t, got[0].Err, &le)

	// A small request within a small budget is delivered; over it, not.
	small := intsRequest(100)
	_, size, err := hgcbor.DecodeOptions{}.Check(small[6:]) // the args map
	require.NoError(t, err)
	for _, budget := range []int64{2 * size, size / 2} {
		r = NewServerMachine(ServerMachineConfig{MaxDecodedBytes: budget})
		r.OnFrame(frame.Frame{RequestID: 1, StreamID: 1, StreamFlags: frame.StreamFlagBegin,
			Type: frame.TypeCommandRequest, Flags: frame.FlagCommandRequestNew, Payload: small})
		a = r.Next()
		if budget > size {
			require.Equal(t, action.KindDeliver, a.Kind, "%v", a)
		} else {
			require.ErrorIs(t, a.Err, action.ErrLimit)
		}
	}
}
