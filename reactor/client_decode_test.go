package reactor

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
)

// encodedClient returns a client reactor with request 1 sent and stream 2
// begun with encoding's stream settings.
func encodedClient(t *testing.T, cfg ClientMachineConfig, encoding string) *ClientMachine {
	cfg.Immediate = true
	c := NewClientMachine(cfg)
	_, err := c.CallCommand(Request{Name: "foo"})
	require.NoError(t, err)
	actiontest.Drain[Response](c)
	c.OnFrame(frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeStreamSettings,
		Flags: frame.FlagStreamSettingsEOS, Payload: append([]byte{0x40 | byte(len(encoding))}, encoding...)})
	require.Empty(t, actiontest.Drain[Response](c))
	return c
}

func encodedFrame(flags frame.Flags, p []byte) frame.Frame {
	return frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagEncoded, Type: frame.TypeCommandResponse,
		Flags: flags, Payload: p}
}

// TestClientDecompressionBombs hands the client one hostile frame each: a
// 32 KiB zstd frame of RLE blocks that expands to 1 GiB, and a 1 MiB zlib
// frame that expands to 1000 MiB. Each ends in an Error naming the sizes
// once the default limit of decoded bytes per response is reached, after
// pieces of at most 128 KiB, with the heap never growing by more than a
// few MiB (it grew by 3.1 GiB and 1.1 GiB when a frame was decoded whole).
func TestClientDecompressionBombs(t *testing.T) {
	for _, tc := range []struct {
		encoding string
		payload  []byte
	}{
		{EncodingZstd8MB, zstdRLEBomb(8190)},
		{EncodingZlib, zlibZerosBomb(t, 1000)},
	} {
		t.Run(tc.encoding, func(t *testing.T) {
			r := runBomb(t, ClientMachineConfig{}, tc.encoding, tc.payload)
			t.Logf("%s: %d input bytes: %d bytes delivered in %d pieces, peak heap +%.1f MiB, %v to the error: %v",
				tc.encoding, len(tc.payload), r.delivered, r.deliveries, float64(r.peakHeap)/(1<<20), r.elapsed, r.err)
			require.ErrorIs(t, r.err, action.ErrLimit)
			var le *action.LimitError
			require.True(t, errors.As(r.err, &le))
			require.Equal(t, int64(DefaultMaxResponseBytes), le.Limit)
			var re *RequestError
			require.True(t, errors.As(r.err, &re))
			require.Equal(t, uint16(1), re.RequestID)
			require.Contains(t, r.err.Error(), "reactor: request 1: decoded response bytes (")
			require.Contains(t, r.err.Error(), "exceeds the limit of 268435456")
			require.LessOrEqual(t, r.delivered, int64(DefaultMaxResponseBytes))
			require.GreaterOrEqual(t, r.deliveries, DefaultMaxResponseBytes/decodeChunk)
			require.Less(t, r.peakHeap, uint64(32<<20), "peak heap")
		})
	}
}

// TestClientDecodedPiecesBounded decodes a zstd frame that expands to
// 256 MiB with no response limit: the output comes in pieces of at most
// 128 KiB, all but the last flagged More, and the heap stays O(frame +
// piece + window), whatever the expansion.
func TestClientDecodedPiecesBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 256 MiB")
	}
	r := runBomb(t, ClientMachineConfig{MaxResponseBytes: -1}, EncodingZstd8MB, zstdRLEBomb(2048))
	t.Logf("%d bytes in %d pieces, peak heap +%.1f MiB, %v", r.delivered, r.deliveries, float64(r.peakHeap)/(1<<20), r.elapsed)
	require.NoError(t, r.err)
	require.Equal(t, int64(2048*decodeChunk), r.delivered)
	require.Equal(t, 2048, r.deliveries)
	require.Less(t, r.peakHeap, uint64(32<<20), "peak heap")

	// The pieces: More on all but the last, which carries the frame's EOS.
	c := encodedClient(t, ClientMachineConfig{MaxResponseBytes: -1}, EncodingZstd8MB)
	c.OnFrame(encodedFrame(frame.FlagCommandResponseEOS, zstdRLEBomb(5)))
	// A frame handed over while the first is still being delivered waits
	// for it.
	c.OnFrame(frame.Frame{RequestID: 1, StreamID: 2, Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseEOS, Payload: []byte("x")})
	acts := actiontest.Drain[Response](c)
	require.Len(t, acts, 6)
	for i, a := range acts[:5] {
		require.Equal(t, action.KindDeliver, a.Kind)
		require.Len(t, a.Value.Data, decodeChunk)
		require.Equal(t, i < 4, a.Value.More, "piece %d", i)
		require.Equal(t, i == 4, a.Value.EOS, "piece %d", i)
	}
	require.Equal(t, action.KindError, acts[5].Kind)
	require.EqualError(t, acts[5].Err, "reactor: received frame for inactive request ID: 1")
}

// TestClientResponseLimitConfigured checks a configured limit: exactly
// the limit passes, one byte more fails before it is delivered.
func TestClientResponseLimitConfigured(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, limit := range []int{len(data), len(data) - 1} {
		c := encodedClient(t, ClientMachineConfig{MaxResponseBytes: limit}, EncodingZlib)
		c.OnFrame(encodedFrame(frame.FlagCommandResponseEOS, zlibBytes(t, data)))
		acts := actiontest.Drain[Response](c)
		if limit == len(data) {
			require.Len(t, acts, 1)
			require.Equal(t, data, acts[0].Value.Data)
			continue
		}
		require.Len(t, acts, 1)
		require.Equal(t, action.KindError, acts[0].Kind)
		require.ErrorIs(t, acts[0].Err, action.ErrLimit)
		require.EqualError(t, acts[0].Err, "reactor: request 1: decoded response bytes (zlib on stream 2, 0 decoded before from 56 compressed bytes): 10000 exceeds the limit of 9999")
	}
}

// TestClientZlibChecksumChecked: a corrupted Adler-32 trailer is an error,
// as in compress/zlib and zlib itself (it was accepted silently).
func TestClientZlibChecksumChecked(t *testing.T) {
	comp := zlibBytes(t, []byte("hello, world"))
	comp[len(comp)-1] ^= 0x40
	c := encodedClient(t, ClientMachineConfig{}, EncodingZlib)
	c.OnFrame(encodedFrame(frame.FlagCommandResponseEOS, comp))
	acts := actiontest.Drain[Response](c)
	require.Len(t, acts, 2)
	require.Equal(t, "hello, world", string(acts[0].Value.Data))
	require.Equal(t, action.KindError, acts[1].Kind)
	require.ErrorIs(t, acts[1].Err, zlib.ErrChecksum)
	require.ErrorIs(t, acts[1].Err, ErrProtocol)
	require.Contains(t, acts[1].Err.Error(), "error decoding zlib stream 2: zlib: invalid checksum")
}

// TestClientZlibDeliversAsSoonAsDecodable sends a zlib stream as
// Mercurial's server does — the 2-byte header alone, then one
// sync-flushed block per frame — and then byte by byte: every frame
// delivers what it completes at once (nothing came out until 4096 more
// compressed bytes or the end of the response arrived).
func TestClientZlibDeliversAsSoonAsDecodable(t *testing.T) {
	pieces := [][]byte{[]byte("first response"), bytes.Repeat([]byte("second "), 50), []byte("third")}
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	require.NoError(t, err)
	c := encodedClient(t, ClientMachineConfig{}, EncodingZlib)
	c.OnFrame(encodedFrame(frame.FlagCommandResponseContinuation, []byte{0x78, 0x9c}))
	acts := actiontest.Drain[Response](c)
	require.Len(t, acts, 1)
	require.Empty(t, acts[0].Value.Data)
	for i, p := range pieces {
		buf.Reset()
		_, _ = w.Write(p)
		require.NoError(t, w.Flush())
		c.OnFrame(encodedFrame(frame.FlagCommandResponseContinuation, buf.Bytes()))
		acts := actiontest.Drain[Response](c)
		require.Len(t, acts, 1)
		require.Equal(t, string(p), string(acts[0].Value.Data), "piece %d", i)
	}

	// One byte per frame: a stored block's bytes come out one by one.
	c = encodedClient(t, ClientMachineConfig{}, EncodingZlib)
	comp := zlibStored([]byte("abcdef"))
	var got []byte
	for i := range comp {
		c.OnFrame(encodedFrame(frame.FlagCommandResponseContinuation, comp[i:i+1]))
		for _, a := range actiontest.Drain[Response](c) {
			require.Equal(t, action.KindDeliver, a.Kind)
			got = append(got, a.Value.Data...)
		}
		// Header (2), block header and lengths (5), then one byte each.
		require.Equal(t, "abcdef"[:max(0, min(6, i+1-7))], string(got), "after %d bytes", i+1)
	}
}

// zlibStored returns p as a zlib stream of one final stored block.
func zlibStored(p []byte) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.NoCompression)
	_, _ = w.Write(p)
	_ = w.Close()
	return buf.Bytes()
}

// TestClientStreamSettingsWithStreamEnd: stream settings on a frame that
// also ends the stream leave no stream to set the decoder on; Mercurial
// reports "error setting stream decoder: 2" (its KeyError), and so do we
// (we accepted it).
func TestClientStreamSettingsWithStreamEnd(t *testing.T) {
	runClientCase(t, clientCase{cfg: ClientMachineConfig{Immediate: true}, steps: []clientStep{
		{in: "call foo", want: []string{"id 1", "frame: 1 1 stream-begin command-request new cbor:{b'name': b'foo'}"}},
		{in: `1 2 stream-begin|stream-end stream-settings eos cbor:b"zlib"`, want: []string{"error: reactor: error setting stream decoder: 2"}},
	}})
}

// TestClientStateAfterError: State says errored after an error, whether
// the frame came through OnFrame or as bytes through Feed (a header the
// frame decoder rejects).
func TestClientStateAfterError(t *testing.T) {
	c := NewClientMachine(ClientMachineConfig{})
	require.Equal(t, ClientStateRunning, c.State())
	c.OnFrame(ffs("1 1 0 command-response eos x"))
	require.Equal(t, action.KindError, c.Next().Kind)
	require.Equal(t, ClientStateErrored, c.State())
	require.Equal(t, "errored", c.State().String())

	c = NewClientMachine(ClientMachineConfig{})
	c.Feed([]byte{1, 0, 0, 1, 0, 2, 0, 0xf2}) // frame type 15 is not defined
	a := c.Next()
	require.Equal(t, action.KindError, a.Kind)
	require.ErrorIs(t, a.Err, ErrProtocol)
	require.Equal(t, ClientStateErrored, c.State())
}

// TestClientEncodedErrorResponseBounded: an encoded frame other than a
// command response is decoded whole, so it is bounded by the largest
// payload the frame decoder takes (1 MiB), not only by the response limit.
func TestClientEncodedErrorResponseBounded(t *testing.T) {
	c := encodedClient(t, ClientMachineConfig{}, EncodingZstd8MB)
	f := encodedFrame(0, zstdRLEBomb(40)) // 5 MiB of 'z'
	f.Type = frame.TypeErrorResponse
	c.OnFrame(f)
	acts := actiontest.Drain[Response](c)
	require.Len(t, acts, 1)
	require.ErrorIs(t, acts[0].Err, action.ErrLimit)
	require.EqualError(t, acts[0].Err, "reactor: request 1: decoded bytes in one frame other than a command response (zstd-8mb stream 2): 1179648 exceeds the limit of 1048576")

	// A small one decodes and is read as usual.
	c = encodedClient(t, ClientMachineConfig{}, EncodingZlib)
	f = encodedFrame(0, zlibBytes(t, frameBytes("1 2 0 error-response 0 cbor:{b'type': b'server', b'message': [{b'msg': b'boom'}]}")[frame.HeaderSize:]))
	f.Type = frame.TypeErrorResponse
	c.OnFrame(f)
	acts = actiontest.Drain[Response](c)
	require.Len(t, acts, 1)
	require.Equal(t, ResponseKindError, acts[0].Value.Kind)
	require.Equal(t, "server", acts[0].Value.Error.Type)
}

// TestClientDecodingStreamsLimited: each stream with a zstd decoder may
// hold an 8 MiB window, so the streams open with a decoder are limited.
func TestClientDecodingStreamsLimited(t *testing.T) {
	c := NewClientMachine(ClientMachineConfig{Immediate: true})
	_, err := c.CallCommand(Request{Name: "foo"})
	require.NoError(t, err)
	actiontest.Drain[Response](c)
	for i := 0; i <= DefaultMaxDecodingStreams; i++ {
		sid := uint8(2 + 2*i)
		c.OnFrame(frame.Frame{RequestID: 1, StreamID: sid, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeStreamSettings,
			Flags: frame.FlagStreamSettingsEOS, Payload: []byte("\x48zstd-8mb")})
		c.OnFrame(frame.Frame{RequestID: 1, StreamID: sid, StreamFlags: frame.StreamFlagEncoded, Type: frame.TypeCommandResponse,
			Flags: frame.FlagCommandResponseContinuation, Payload: zstdRLEBomb(1)})
		acts := actiontest.Drain[Response](c)
		if i < DefaultMaxDecodingStreams {
			require.Len(t, acts, 1)
			require.Len(t, acts[0].Value.Data, decodeChunk)
			continue
		}
		require.Len(t, acts, 1)
		require.EqualError(t, acts[0].Err, "reactor: request 1: streams with a content decoder: 5 exceeds the limit of 4")
	}
	// A stream that ends frees its place.
	c = NewClientMachine(ClientMachineConfig{Immediate: true, MaxDecodingStreams: 1})
	_, err = c.CallCommand(Request{Name: "foo"})
	require.NoError(t, err)
	actiontest.Drain[Response](c)
	for _, sid := range []uint8{2, 4} {
		c.OnFrame(frame.Frame{RequestID: 1, StreamID: sid, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeStreamSettings,
			Flags: frame.FlagStreamSettingsEOS, Payload: []byte("\x44zlib")})
		c.OnFrame(frame.Frame{RequestID: 1, StreamID: sid, StreamFlags: frame.StreamFlagEnd, Type: frame.TypeCommandResponse,
			Flags: frame.FlagCommandResponseContinuation})
		require.Len(t, actiontest.Drain[Response](c), 1)
		require.Equal(t, ClientStateRunning, c.State())
	}
}

// TestClientSlotKeepsOrder: a delivery held in the single slot comes out
// before whatever is queued after it — a Send, another delivery, an Error.
func TestClientSlotKeepsOrder(t *testing.T) {
	c := NewClientMachine(ClientMachineConfig{Immediate: true, MultipleSends: true})
	_, err := c.CallCommand(Request{Name: "a"})
	require.NoError(t, err)
	actiontest.Drain[Response](c)
	c.OnFrame(ffs("1 2 stream-begin command-response continuation first"))
	require.Equal(t, "first", string(c.Next().Value.Data))
	c.OnFrame(ffs("1 2 0 command-response continuation second")) // the fast path: into the slot
	_, err = c.CallCommand(Request{Name: "b"})
	require.NoError(t, err)
	c.OnFrame(ffs("1 2 0 command-response eos third"))
	c.OnFrame(ffs("1 2 0 command-response eos fourth")) // request 1 is no longer active
	acts := actiontest.Drain[Response](c)
	require.Len(t, acts, 4)
	require.Equal(t, "second", string(acts[0].Value.Data))
	require.True(t, acts[0].Value.More)
	require.Equal(t, action.KindSend, acts[1].Kind)
	require.Equal(t, "third", string(acts[2].Value.Data))
	require.True(t, acts[2].Value.EOS)
	require.EqualError(t, acts[3].Err, "reactor: received frame for inactive request ID: 1")
}
