package reactor

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
)

// zstdRLEBomb returns a zstd frame of n RLE blocks of 128 KiB each: 4 bytes
// of input per 128 KiB of output.
func zstdRLEBomb(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3} // magic, FHD, 8 MiB window
	for i := 0; i < n; i++ {
		h := uint32(128<<10)<<3 | 1<<1
		if i == n-1 {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 'z')
	}
	return b
}

// zlibZerosBomb returns a zlib stream of mib MiB of zeros, built from one
// compressed MiB repeated: about 1 KiB of input per MiB of output.
func zlibZerosBomb(t testing.TB, mib int) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	_, _ = w.Write(zeros)
	require.NoError(t, w.Flush())
	first := bytes.Clone(buf.Bytes())
	buf.Reset()
	_, _ = w.Write(zeros)
	require.NoError(t, w.Flush())
	rest := bytes.Clone(buf.Bytes())
	out := []byte{0x78, 0xda}
	out = append(out, first...)
	for i := 1; i < mib; i++ {
		out = append(out, rest...)
	}
	out = append(out, 0x03, 0x00) // an empty final fixed-Huffman block
	n := uint64(mib) << 20
	return binary.BigEndian.AppendUint32(out, uint32(n%65521)<<16|1)
}

type bombResult struct {
	delivered  int64
	deliveries int
	peakHeap   uint64 // HeapAlloc above the baseline, sampled at every action
	elapsed    time.Duration
	err        error
}

// runBomb hands a client reactor stream settings for encoding and then one
// encoded command-response frame holding payload, drains it without
// keeping anything, and reports what it cost.
func runBomb(t testing.TB, cfg ClientMachineConfig, encoding string, payload []byte) bombResult {
	cfg.Immediate = true
	c := NewClientMachine(cfg)
	_, err := c.CallCommand(Request{Name: "bomb"})
	require.NoError(t, err)
	actiontest.Drain[Response](c)
	c.OnFrame(frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeStreamSettings,
		Flags: frame.FlagStreamSettingsEOS, Payload: append([]byte{0x40 | byte(len(encoding))}, encoding...)})
	require.Empty(t, actiontest.Drain[Response](c))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var res bombResult
	sample := func() {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base && ms.HeapAlloc-base > res.peakHeap {
			res.peakHeap = ms.HeapAlloc - base
		}
	}
	start := time.Now()
	c.OnFrame(frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagEncoded, Type: frame.TypeCommandResponse,
		Flags: frame.FlagCommandResponseEOS, Payload: payload})
	for {
		a := c.Next()
		if res.deliveries%64 == 0 || a.Kind != action.KindDeliver {
			sample()
		}
		if a.Kind == action.KindDeliver {
			res.deliveries++
			res.delivered += int64(len(a.Value.Data))
			continue
		}
		if a.Kind == action.KindError {
			res.err = a.Err
		}
		break
	}
	res.elapsed = time.Since(start)
	return res
}
