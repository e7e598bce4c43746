package reactor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/framing"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// Fuzz limits: small, so bounded memory is checked against them.
const (
	fuzzMaxRequestBytes = 1 << 16
	fuzzMaxPending      = 8
)

// seedWires returns the frame bytes of every vector of one side, one seed
// per vector, from testdata/hg-reactor-vectors.json.
func seedWires(f *testing.F, server bool) [][]byte {
	vf := loadVectors(f)
	var out [][]byte
	add := func(steps []step) {
		var wire []byte
		for _, st := range steps {
			if st.Op == "frame" {
				wire = append(wire, mustHex(f, st.Hex)...)
			}
		}
		if len(wire) > 0 && len(wire) < 1<<16 {
			out = append(out, wire)
		}
	}
	if server {
		for _, v := range vf.Server {
			add(v.Steps)
		}
	} else {
		for _, v := range vf.Client {
			add(v.Steps)
		}
	}
	return out
}

// checkTerminal drains m, handing deliveries to onDeliver as they come,
// and requires the machine rules: a bounded number of actions, and after an
// Error the same Error for ever.
func checkTerminal[T any](t *testing.T, m action.Machine[T], onDeliver func(T)) (errored bool) {
	acts := actiontest.Drain(m, actiontest.OnDeliver(m, onDeliver), actiontest.Limit(1<<16))
	err := acts.Err()
	require.NotErrorIs(t, err, actiontest.ErrRunaway, "machine never settles")
	if err == nil {
		return false
	}
	for range 3 {
		require.Equal(t, action.Fail[T](err), m.Next(), "an Error must be terminal")
	}
	return true
}

// fuzzServer answers every command the server delivers and checks it:
// bounded buffers, and a decoded form bounded by the input (inputLen bytes
// hold the request): the default budget, measured as hgcbor measures what
// it decodes.
func fuzzServer(t *testing.T, r *ServerMachine, inputLen int) func(Command) {
	var out *OutputStream
	return func(c Command) {
		if out == nil {
			out = r.NewOutputStream()
		}
		args := c.Args.Map()
		require.NotNil(t, args)
		var decoded int64
		for _, v := range []any{args, c.Redirect} {
			enc, err := hgcbor.Marshal(v)
			require.NoError(t, err)
			_, size, err := hgcbor.DecodeOptions{MaxDecodedBytes: 1 << 40}.Check(enc)
			require.NoError(t, err)
			decoded += size
		}
		require.LessOrEqual(t, decoded, hgcbor.DefaultDecodedSize(inputLen), "decoded form of a request in %d bytes", inputLen)
		if raw, ok := c.Args.Raw("k"); ok {
			v, ok := c.Args.Get("k")
			require.True(t, ok)
			require.Equal(t, hgcbor.PythonLiteral(v), hgcbor.PythonLiteral(mustUnmarshal(t, raw)))
		}
		var err error
		switch c.RequestID % 3 {
		case 0:
			err = r.RespondObjects(out, c.RequestID, args, c.Data, []any{c.Name})
		case 1:
			err = r.RespondCommandError(out, c.RequestID, c.Name, []any{c.Data})
		default:
			err = r.RespondServerError(out, c.RequestID, c.Name)
		}
		require.NoError(t, err)
		for _, p := range r.receiving {
			require.LessOrEqual(t, len(p.payload)+len(p.data), fuzzMaxRequestBytes)
		}
		require.LessOrEqual(t, len(r.receiving), fuzzMaxPending)
	}
}

// FuzzServerReactor feeds arbitrary bytes, split at an arbitrary point,
// through the server's frame decoder.
func FuzzServerReactor(f *testing.F) {
	for _, w := range seedWires(f, true) {
		f.Add(w, uint16(len(w)/2), false)
	}
	f.Fuzz(func(t *testing.T, wire []byte, cut uint16, deferOutput bool) {
		r := NewServerMachine(ServerMachineConfig{DeferOutput: deferOutput, MaxRequestBytes: fuzzMaxRequestBytes,
			MaxPendingRequests: fuzzMaxPending, Encodings: []string{EncodingZlib, EncodingIdentity}})
		onDeliver := fuzzServer(t, r, len(wire))
		c := min(int(cut), len(wire))
		r.Feed(wire[:c])
		if checkTerminal[Command](t, r, onDeliver) {
			return
		}
		r.Feed(wire[c:])
		if checkTerminal[Command](t, r, onDeliver) {
			return
		}
		r.FeedEOF()
		checkTerminal[Command](t, r, onDeliver)
	})
}

// framesFromFuzz reads arbitrary frame sequences: per frame 7 bytes of
// header fields (request id, stream id, stream flags, type and flags,
// payload length) then the payload.
func framesFromFuzz(data []byte) []frame.Frame {
	var out []frame.Frame
	for len(data) >= 7 {
		n := min(int(data[6]), len(data)-7)
		out = append(out, frame.Frame{
			RequestID:   uint16(data[0]) | uint16(data[1])<<8,
			StreamID:    data[2],
			StreamFlags: frame.StreamFlags(data[3] & 7),
			Type:        frame.Type(data[4] >> 4),
			Flags:       frame.Flags(data[4] & 15),
			Payload:     data[7 : 7+n],
		})
		data = data[7+n:]
	}
	return out
}

func framesToFuzz(frames []frame.Frame) []byte {
	var out []byte
	for _, f := range frames {
		p := f.Payload[:min(len(f.Payload), 255)]
		out = append(out, byte(f.RequestID), byte(f.RequestID>>8), f.StreamID, byte(f.StreamFlags),
			byte(f.Type)<<4|byte(f.Flags), 0, byte(len(p)))
		out = append(out, p...)
	}
	return out
}

func seedFrameSeqs(f *testing.F, server bool) [][]byte {
	var out [][]byte
	for _, w := range seedWires(f, server) {
		out = append(out, framesToFuzz(parseFrames(f, w)))
	}
	return out
}

// FuzzServerFrames hands the server arbitrary frame sequences directly.
func FuzzServerFrames(f *testing.F) {
	for _, s := range seedFrameSeqs(f, true) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewServerMachine(ServerMachineConfig{MaxRequestBytes: fuzzMaxRequestBytes, MaxPendingRequests: fuzzMaxPending})
		onDeliver := fuzzServer(t, r, len(data))
		for _, fr := range framesFromFuzz(data) {
			r.OnFrame(fr)
			if checkTerminal[Command](t, r, onDeliver) {
				return
			}
		}
		r.FeedEOF()
		checkTerminal[Command](t, r, onDeliver)
	})
}

// fuzzMaxResponse is the fuzzed clients' limit of decoded bytes per
// response.
const fuzzMaxResponse = 1 << 18

func fuzzClient(t *testing.T) *ClientMachine {
	c := NewClientMachine(ClientMachineConfig{MultipleSends: true, Immediate: true, MaxDecoderBuffer: 1 << 16,
		MaxResponseBytes: fuzzMaxResponse, ContentEncodings: []string{EncodingZstd8MB, EncodingZlib, EncodingIdentity}})
	for _, name := range []string{"a", "b", "c"} {
		_, err := c.CallCommand(Request{Name: name, Args: map[hgcbor.Bytes]any{"k": []byte(name)}})
		require.NoError(t, err)
	}
	checkTerminal[Response](t, c, func(Response) {})
	return c
}

// responseOracle checks every delivered Response: only for issued (odd)
// requests, no piece of a command response larger than decodeChunk or the
// input (other frames are decoded whole, within the frame decoder's
// largest payload), and the data
// delivered for each request within its input bytes plus the decoded-bytes
// limit (the output-size oracle: decoding may expand by at most the limit).
type responseOracle struct {
	t         *testing.T
	input     int            // bytes handed to the reactor so far
	delivered map[uint16]int // data bytes per request
}

func newResponseOracle(t *testing.T) *responseOracle {
	return &responseOracle{t: t, delivered: map[uint16]int{}}
}

func (o *responseOracle) check(r Response) {
	require.Equal(o.t, uint16(1), r.RequestID%2, "responses only for issued (odd) requests")
	limit := max(decodeChunk, o.input)
	if r.Kind != ResponseKindData {
		// Frames other than command responses are decoded whole, up to
		// the largest payload the frame decoder takes.
		limit = max(limit, framing.DefaultDecoderMaxPayload)
	}
	require.LessOrEqual(o.t, len(r.Data), limit, "a %v piece larger than its bound", r.Kind)
	o.delivered[r.RequestID] += len(r.Data)
	require.LessOrEqual(o.t, o.delivered[r.RequestID], o.input+fuzzMaxResponse,
		"request %d: %d bytes delivered from %d bytes of input", r.RequestID, o.delivered[r.RequestID], o.input)
}

// FuzzClientReactor feeds arbitrary bytes, split at an arbitrary point,
// through the client's frame decoder.
func FuzzClientReactor(f *testing.F) {
	for _, w := range seedWires(f, false) {
		f.Add(w, uint16(len(w)/3))
	}
	f.Fuzz(func(t *testing.T, wire []byte, cut uint16) {
		c := fuzzClient(t)
		o := newResponseOracle(t)
		n := min(int(cut), len(wire))
		o.input = n
		c.Feed(wire[:n])
		if checkTerminal[Response](t, c, o.check) {
			require.Equal(t, ClientStateErrored, c.State())
			return
		}
		o.input = len(wire)
		c.Feed(wire[n:])
		if checkTerminal[Response](t, c, o.check) {
			require.Equal(t, ClientStateErrored, c.State())
			return
		}
		c.FeedEOF()
		if checkTerminal[Response](t, c, o.check) {
			require.Equal(t, ClientStateErrored, c.State())
		}
	})
}

// FuzzClientFrames hands the client arbitrary frame sequences directly.
func FuzzClientFrames(f *testing.F) {
	for _, s := range seedFrameSeqs(f, false) {
		f.Add(s)
	}
	// Expanding streams: 7.5 MiB of zstd RLE blocks, a zlib stream of
	// zeros, each in one frame after stream settings.
	call := ffs("1 2 stream-begin command-response continuation x")
	for _, enc := range []struct {
		name    string
		payload []byte
	}{{EncodingZstd8MB, zstdRLEBomb(60)}, {EncodingZlib, zlibBytes(f, make([]byte, 100000))}} {
		settings := frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagBegin, Type: frame.TypeStreamSettings,
			Flags: frame.FlagStreamSettingsEOS, Payload: append([]byte{0x40 | byte(len(enc.name))}, enc.name...)}
		body := frame.Frame{RequestID: 1, StreamID: 2, StreamFlags: frame.StreamFlagEncoded, Type: frame.TypeCommandResponse,
			Flags: frame.FlagCommandResponseEOS, Payload: enc.payload}
		f.Add(framesToFuzz([]frame.Frame{settings, body, call}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzClient(t)
		o := newResponseOracle(t)
		frames := framesFromFuzz(data)
		for i, fr := range frames {
			o.input += len(fr.Payload)
			c.OnFrame(fr)
			// Now and then hand over the next frame before draining: it
			// waits for the output of this one.
			if i+1 < len(frames) && fr.Flags&frame.FlagCommandResponseContinuation != 0 {
				continue
			}
			if checkTerminal[Response](t, c, o.check) {
				require.Equal(t, ClientStateErrored, c.State())
				return
			}
		}
		checkTerminal[Response](t, c, o.check)
	})
}

// FuzzRequest checks the server's request decoding, which reads the CBOR
// without building it (hgcbor's RawMessage readers), against the obvious
// way: decode every item, take the first as a map, look its fields up.
// Both must agree on whether the request is delivered, and on the command.
func FuzzRequest(f *testing.F) {
	for _, lit := range []string{
		"{b'name': b'heads'}",
		"{b'name': b'x', b'args': {b'a': [1, b'2', None]}, b'redirect': {b't': [b'a']}}",
		"{b'args': {}, b'name': b'" + strings.Repeat("n", 300) + "'}",
		"{b'name': b'x', b'other': 1}",
		"{b'args': {b'foo': b'bar', b'': b'', b'k': b'" + strings.Repeat("v", 30) + "'}, b'name': b'heads'}",
		"{b'args': {b'a': b'1', b'a': b'2'}, b'name': b'heads'}",
		"{b'name': b'a', b'name': b'b', b'args': 1}",
		"[b'name']",
	} {
		f.Add(ffs("1 1 0 command-request new cbor:" + lit).Payload)
	}
	f.Add([]byte("\xbf\x44name\x5f\x41h\x41i\xff\x44args\xbf\x41k\x01\xff\xff"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		const budget = 1 << 30 // the same decoded-size bound on both paths
		r := NewServerMachine(ServerMachineConfig{MaxDecodedBytes: budget})
		var cmd Command
		err := r.decodeRequest(&cmd, 1, payload, nil)

		values, werr := decodeAllOpts(hgcbor.DecodeOptions{MaxDecodedBytes: budget}, payload)
		var m map[any]any
		if werr == nil && len(values) > 0 {
			m, _ = values[0].(map[any]any)
		}
		name, nameOK := m[hgcbor.Bytes("name")].([]byte)
		args, argsOK := m[hgcbor.Bytes("args")]
		if !argsOK {
			args, argsOK = map[any]any{}, true
		}
		_, argsOK = args.(map[any]any)
		if werr != nil || !nameOK || !argsOK {
			require.Error(t, err, "delivered what the general path rejects")
			return
		}
		require.NoError(t, err)
		require.Equal(t, string(name), cmd.Name)
		require.Equal(t, py(args), py(cmd.Args.Map()))
		require.Equal(t, py(m[hgcbor.Bytes("redirect")]), py(cmd.Redirect))
		for k, v := range args.(map[any]any) {
			if kb, ok := k.(hgcbor.Bytes); ok {
				got, ok := cmd.Args.Get(string(kb))
				require.True(t, ok)
				require.Equal(t, py(v), py(got))
			}
		}
	})
}

func mustUnmarshal(t *testing.T, b []byte) any {
	v, err := hgcbor.Unmarshal(b)
	require.NoError(t, err)
	return v
}
