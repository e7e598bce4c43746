package framing

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
)

// sampleFrames covers every frame type, stream flags, and payloads of
// interesting sizes.
func sampleFrames() []frame.Frame {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	withPayload := func(human string, payload []byte) frame.Frame {
		f := frame.MustParseHuman(human)
		f.Payload = payload
		return f
	}
	return []frame.Frame{
		frame.MustParseHuman("1 1 stream-begin command-request new cbor:{b'name': b'heads'}"),
		frame.MustParseHuman("1 1 0 command-data eos "),
		frame.MustParseHuman("1 2 stream-begin stream-settings eos cbor:b'identity'"),
		withPayload("1 2 encoded command-response continuation ", big[:32768]),
		withPayload("65534 255 stream-end|encoded command-response eos ", big[:65535]),
		frame.MustParseHuman("3 2 0 error-response 0 x"),
		withPayload("3 2 0 text-output 0 ", big[:65536]),
		frame.MustParseHuman("4 2 0 progress 0 "),
		frame.MustParseHuman("4 1 0 sender-protocol-settings eos cbor:{b'contentencodings': [b'identity']}"),
	}
}

// human parses frames written in Mercurial's human syntax.
func human(lines ...string) []frame.Frame {
	frames := make([]frame.Frame, len(lines))
	for i, l := range lines {
		frames[i] = frame.MustParseHuman(l)
	}
	return frames
}

// requireHuman checks that got are the frames want describes in human
// syntax.
func requireHuman(t *testing.T, got []frame.Frame, want ...string) {
	t.Helper()
	var g, w []string
	for _, f := range got {
		g = append(g, frame.FormatHuman(f))
	}
	for _, f := range human(want...) {
		w = append(w, frame.FormatHuman(f))
	}
	require.Equal(t, w, g)
}

func encodeFrames(frames []frame.Frame) []byte {
	var b []byte
	for i := range frames {
		b = frames[i].Append(b)
	}
	return b
}

// decodeSplit feeds wire to d in the pieces cut at the given offsets and
// returns clones of every delivered frame, and the final error: nil at a
// clean end, which Next must report as an io.EOF Error.
// It overwrites each fed piece after WantMore, as a caller reusing its read
// buffer would, so a decoder that keeps referencing it fails the test.
func decodeSplit(t testing.TB, d *Decoder, wire []byte, cuts []int) ([]frame.Frame, error) {
	t.Helper()
	var got []frame.Frame
	drain := func() error {
		acts := actiontest.Drain(d, actiontest.RetainWith(d, frame.Frame.Clone))
		require.Empty(t, acts.Sent(), "a decoder sends nothing")
		got = append(got, acts.Delivered()...)
		return acts.Err()
	}
	prev := 0
	for _, c := range append(cuts, len(wire)) {
		piece := bytes.Clone(wire[prev:c])
		prev = c
		d.Feed(piece)
		if err := drain(); err != nil {
			return got, err
		}
		for i := range piece {
			piece[i] = 0xee
		}
	}
	d.FeedEOF()
	err := drain()
	if err == nil {
		t.Fatal("Next said WantMore after FeedEOF; a clean end is an Error with io.EOF")
	}
	if err == io.EOF {
		return got, nil
	}
	return got, err
}

func requireSameFrames(t *testing.T, want, got []frame.Frame) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].String(), got[i].String(), "frame %d", i)
		require.True(t, bytes.Equal(want[i].Payload, got[i].Payload), "payload of frame %d", i)
	}
}

func TestDecoderAnySplit(t *testing.T) {
	frames := sampleFrames()
	wire := encodeFrames(frames)
	rng := rand.New(rand.NewPCG(1, 2))
	randomCuts := func(maxPiece int) []int {
		var cuts []int
		for at := rng.IntN(maxPiece) + 1; at < len(wire); at += rng.IntN(maxPiece) + 1 {
			cuts = append(cuts, at)
		}
		return cuts
	}
	oneByte := make([]int, 0, len(wire))
	for i := 1; i < len(wire); i++ {
		oneByte = append(oneByte, i)
	}
	cases := []struct {
		name string
		cuts []int
	}{
		{"whole", nil},
		{"one byte at a time", oneByte},
		{"inside first header", []int{3}},
		{"at first header end", []int{8}},
		{"inside first payload", []int{12}},
		{"random small pieces", randomCuts(7)},
		{"random medium pieces", randomCuts(1000)},
		{"random large pieces", randomCuts(40000)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeSplit(t, NewDecoder(DecoderConfig{}), wire, tc.cuts)
			require.NoError(t, err)
			requireSameFrames(t, frames, got)
		})
	}
}

func TestDecoderEveryTwoWaySplit(t *testing.T) {
	frames := human(
		"1 1 stream-begin command-request new|more \\xa2\\x44args",
		"1 1 0 command-request continuation ",
		"1 1 0 command-data eos data",
	)
	wire := encodeFrames(frames)
	for i := 0; i <= len(wire); i++ {
		for j := i; j <= len(wire); j++ {
			var d Decoder // the zero value works
			got, err := decodeSplit(t, &d, wire, []int{i, j})
			require.NoError(t, err, "cuts %d,%d", i, j)
			requireSameFrames(t, frames, got)
		}
	}
}

// TestNextFrameEveryTwoWaySplit drives NextFrame, which has its own fast
// path, through every two-way split, then through the end of input.
func TestNextFrameEveryTwoWaySplit(t *testing.T) {
	frames := human(
		"1 1 stream-begin command-request new|more \\xa2\\x44args",
		"1 1 0 command-request continuation ",
		"1 1 0 command-data eos data",
	)
	wire := encodeFrames(frames)
	for i := 0; i <= len(wire); i++ {
		for j := i; j <= len(wire); j++ {
			var d Decoder
			var got []frame.Frame
			for _, part := range [][]byte{wire[:i], wire[i:j], wire[j:]} {
				d.Feed(part)
				for {
					f, err := d.NextFrame()
					require.NoError(t, err, "cuts %d,%d", i, j)
					if f == nil {
						break
					}
					got = append(got, f.Clone())
				}
			}
			requireSameFrames(t, frames, got)
			d.FeedEOF()
			f, err := d.NextFrame()
			require.Nil(t, f, "cuts %d,%d", i, j)
			require.NoError(t, err, "a clean end leaves NextFrame answering nil, nil")
		}
	}
	var d Decoder
	d.Feed(wire[:len(wire)-1])
	d.FeedEOF()
	for range 2 {
		_, _ = d.NextFrame()
	}
	f, err := d.NextFrame()
	require.Nil(t, f)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "an end inside a frame is reported, and again after")
}

func within(inner, outer []byte) bool {
	if len(inner) == 0 || len(outer) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return p >= start && p+uintptr(len(inner)) <= start+uintptr(len(outer))
}

func TestDecoderZeroCopyWhenWhole(t *testing.T) {
	wire := encodeFrames(human("1 1 0 command-data continuation abc", "1 1 0 command-data eos defg"))
	d := NewDecoder(DecoderConfig{})
	d.Feed(wire)
	for _, want := range []string{"abc", "defg"} {
		a := d.Next()
		require.Equal(t, action.KindDeliver, a.Kind)
		require.Equal(t, want, string(a.Value.Payload))
		require.True(t, within(a.Value.Payload, wire), "payload aliases the fed slice")
		require.Equal(t, len(a.Value.Payload), cap(a.Value.Payload), "payload capacity is cut")
	}
	require.Equal(t, action.KindWantMore, d.Next().Kind)
	require.Zero(t, d.Buffered())
}

func TestDecoderCopiesSplitFrame(t *testing.T) {
	wire := encodeFrames(human("9 2 0 command-response eos hello, world"))
	d := NewDecoder(DecoderConfig{})
	first := bytes.Clone(wire[:11])
	d.Feed(first)
	require.Equal(t, action.KindWantMore, d.Next().Kind)
	require.Equal(t, 11, d.Buffered())
	copy(first, bytes.Repeat([]byte{0}, len(first))) // the caller reuses its buffer
	rest := bytes.Clone(wire[11:])
	d.Feed(rest)
	a := d.Next()
	require.Equal(t, action.KindDeliver, a.Kind)
	require.Equal(t, "hello, world", string(a.Value.Payload))
	require.False(t, within(a.Value.Payload, rest))
	require.Equal(t, uint16(9), a.Value.RequestID)
	require.Equal(t, action.KindWantMore, d.Next().Kind)
}

func TestDecoderFeedBeforeDrain(t *testing.T) {
	frames := sampleFrames()[:3]
	wire := encodeFrames(frames)
	d := NewDecoder(DecoderConfig{})
	// Feed everything in three pieces without calling Next in between: the
	// decoder must copy what it has not read rather than lose it.
	d.Feed(bytes.Clone(wire[:5]))
	d.Feed(bytes.Clone(wire[5:30]))
	d.Feed(bytes.Clone(wire[30:]))
	got := actiontest.Drain(d, actiontest.RetainWith(d, frame.Frame.Clone))
	require.NoError(t, got.Err())
	requireSameFrames(t, frames, got.Delivered())
}

func TestDecoderLimit(t *testing.T) {
	cases := []struct {
		name    string
		cfg     DecoderConfig
		length  int
		wantErr string
	}{
		{"at default limit", DecoderConfig{}, DefaultDecoderMaxPayload, ""},
		{"over default limit", DecoderConfig{}, DefaultDecoderMaxPayload + 1,
			"framing: command-response frame payload bytes: 1048577 exceeds the limit of 1048576"},
		{"at configured limit", DecoderConfig{MaxPayload: 100}, 100, ""},
		{"over configured limit", DecoderConfig{MaxPayload: 100}, 101,
			"framing: command-response frame payload bytes: 101 exceeds the limit of 100"},
		{"limit above the field's range", DecoderConfig{MaxPayload: 1 << 30}, frame.MaxPayload, ""},
	}
	for _, tc := range cases {
		for _, split := range []bool{false, true} {
			d := NewDecoder(tc.cfg)
			hdr := frame.AppendHeader(nil, frame.Header{Length: tc.length, RequestID: 1, StreamID: 2,
				Type: frame.TypeCommandResponse, Flags: frame.FlagCommandResponseEOS})
			if split {
				d.Feed(hdr[:4])
				require.Equal(t, action.KindWantMore, d.Next().Kind)
				d.Feed(hdr[4:])
			} else {
				d.Feed(hdr)
			}
			a := d.Next()
			if tc.wantErr == "" {
				require.Equal(t, action.KindWantMore, a.Kind, tc.name)
				continue
			}
			require.Equal(t, action.KindError, a.Kind, tc.name)
			require.EqualError(t, a.Err, tc.wantErr)
			require.ErrorIs(t, a.Err, action.ErrLimit)
			var tooLarge *action.LimitError
			require.ErrorAs(t, a.Err, &tooLarge)
			require.Equal(t, int64(tc.length), tooLarge.Size)
			require.Less(t, cap(d.buf), 64, "no buffer grown for a refused frame")
			// Terminal: the same error again, and Feed does nothing.
			d.Feed(make([]byte, 100))
			require.Equal(t, a, d.Next())
			require.Equal(t, a.Err, d.Err())
		}
	}
}

func TestDecoderHeaderErrors(t *testing.T) {
	cases := []struct {
		name   string
		header []byte
		msg    string
	}{
		{"type zero", []byte{0, 0, 0, 1, 0, 1, 0, 0x00}, "frame: invalid frame type 0"},
		{"type 4", []byte{0, 0, 0, 1, 0, 1, 0, 0x40}, "frame: invalid frame type 4"},
		{"stream flag 0x08", []byte{0, 0, 0, 1, 0, 1, 0x08, 0x11}, "frame: invalid stream flags 0x08"},
		{"flags for text output", []byte{0, 0, 0, 1, 0, 1, 0, 0x61}, "frame: invalid flags 0x01 for text-output frame"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// After a good frame, so the error comes from the stream's middle.
			good := encodeFrames(human("1 1 0 progress 0 p"))
			for _, cuts := range [][]int{nil, {len(good) + 3}} {
				d := NewDecoder(DecoderConfig{})
				got, err := decodeSplit(t, d, append(good, tc.header...), cuts)
				require.Len(t, got, 1)
				require.EqualError(t, err, tc.msg)
				var he *frame.HeaderError
				require.ErrorAs(t, err, &he)
				require.Equal(t, action.KindError, d.Next().Kind)
			}
		})
	}
}

func TestDecoderEOF(t *testing.T) {
	frameBytes := encodeFrames(human("1 1 0 command-data eos 0123456789ab"))
	cases := []struct {
		name    string
		input   []byte
		frames  int
		wantErr string
		pending int
	}{
		{"nothing", nil, 0, "", 0},
		{"whole frame", frameBytes, 1, "", 0},
		{"partial header", frameBytes[:3], 0, "framing: input ended inside a frame header: 3 of 8 header bytes pending", 3},
		{"header only", frameBytes[:8], 0, "framing: input ended inside a frame: 8 of 20 bytes pending", 8},
		{"partial payload", frameBytes[:19], 0, "framing: input ended inside a frame: 19 of 20 bytes pending", 19},
		{"frame then partial", append(bytes.Clone(frameBytes), frameBytes[:10]...), 1,
			"framing: input ended inside a frame: 10 of 20 bytes pending", 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeSplit(t, NewDecoder(DecoderConfig{}), tc.input, nil)
			require.Len(t, got, tc.frames)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.wantErr)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			var te *TruncatedError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tc.pending, te.Pending)
		})
	}
}

func TestDecoderFeedAfterEOF(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	d.FeedEOF()
	d.Feed([]byte{1})
	a := d.Next()
	require.Equal(t, action.KindError, a.Kind)
	require.ErrorIs(t, a.Err, ErrFeedAfterEOF)
}

// A clean end of input is a terminal Error with io.EOF, so a loop calling
// Next until WantMore or Error ends; input ending inside a frame is not.
func TestDecoderCleanEndIsEOF(t *testing.T) {
	wire := encodeFrames(sampleFrames()[:2])
	for how, cut := range actiontest.Splits(len(wire)) {
		got := actiontest.Feed(NewDecoder(DecoderConfig{}), wire, cut, actiontest.ThenEOF())
		require.Len(t, got.Delivered(), 2, how)
		require.Equal(t, io.EOF, got.Err(), how)
	}
	d := NewDecoder(DecoderConfig{})
	d.FeedEOF()
	a := d.Next()
	require.Equal(t, action.Fail[frame.Frame](io.EOF), a, "nothing at all is a clean end too")
	d.Feed([]byte{1})
	require.Equal(t, a, d.Next(), "terminal: Feed is a no-op, Next repeats the error")
	f, err := d.NextFrame()
	require.Nil(t, f)
	require.Equal(t, io.EOF, err)

	got := actiontest.Feed(NewDecoder(DecoderConfig{}), wire[:len(wire)-1], actiontest.ThenEOF())
	require.ErrorIs(t, got.Err(), io.ErrUnexpectedEOF)
	require.NotErrorIs(t, got.Err(), io.EOF)
}

func TestDecoderReset(t *testing.T) {
	wire := encodeFrames(sampleFrames()[:1])
	d := NewDecoder(DecoderConfig{MaxPayload: 64})
	d.Feed(wire[:5])
	require.Equal(t, action.KindWantMore, d.Next().Kind)
	d.Reset(DecoderConfig{MaxPayload: 16})
	require.Zero(t, d.Buffered())
	require.Equal(t, 16, d.limit(), "Reset configures")
	got, err := decodeSplit(t, d, wire, []int{4})
	require.NoError(t, err)
	requireSameFrames(t, sampleFrames()[:1], got)
}

// A stream of split frames costs no allocation once the buffer has grown.
func TestDecoderSteadyStateAllocs(t *testing.T) {
	wire := encodeFrames(sampleFrames()[:4])
	pieces := [][]byte{wire[:3], wire[3:50], wire[50:1000], wire[1000:]}
	d := NewDecoder(DecoderConfig{})
	run := func() {
		for _, p := range pieces {
			d.Feed(p)
			for d.Next().Kind == action.KindDeliver {
			}
		}
	}
	run()
	require.Zero(t, testing.AllocsPerRun(100, run))
}

func TestDecoderErrorsAreTyped(t *testing.T) {
	err := payloadLimit(frame.Header{Length: 5, Type: frame.TypeProgress}, 4)
	require.False(t, errors.Is(err, io.ErrUnexpectedEOF))
	require.True(t, errors.Is(err, action.ErrLimit))
	require.Equal(t, "framing: progress frame payload bytes: 5 exceeds the limit of 4", err.Error())
}
