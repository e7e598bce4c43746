package qmp

import (
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/jsonstream"
)

// feedChunks feeds data to m in chunks of n bytes and drains after each.
func feedChunks[T any](t *testing.T, m action.Machine[T], data []byte, n int, eof bool) (sent []byte, got []T, err error) {
	opts := []actiontest.Option{actiontest.Chunks(n)}
	if eof {
		opts = append(opts, actiontest.ThenEOF())
	}
	acts := actiontest.Feed(m, data, opts...)
	require.NotErrorIs(t, acts.Err(), actiontest.ErrRunaway)
	return acts.Sent(), acts.Delivered(), acts.Err()
}

// checkTerminal asserts that a machine that failed keeps failing the same way.
func checkTerminal[T any](t *testing.T, m action.Machine[T], err error) {
	if err == nil {
		return
	}
	m.Feed([]byte(`{"return": {}, "id": 1}`))
	a := m.Next()
	require.Equal(t, action.KindError, a.Kind)
	require.Equal(t, err, a.Err)
}

func FuzzClientMachine(f *testing.F) {
	for _, s := range []string{
		qemuGreeting + `{"return": {}, "id": 1}` + "\r\n" + `{"return": {"status": "running"}, "id": 2}{"return": {}, "id": 3.0}`,
		qemuGreeting + `{"return": {}, "id": 1}{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "data": {"a": [1]}}`,
		qemuGreeting + `{"return": {}, "id": 1}{"error": {"class": "GenericError", "desc": "JSON parse error"}}{"id": 3, "error": {"class": "CommandNotFound", "desc": "x"}}`,
		qemuGreeting + `{"id": 1, "error": {"class": "GenericError", "desc": "no"}}`,
		qemuGreeting + `{"return": {}, "id": 1} junk {"return": {}, "id": 99}`,
		`{"QMP": {"version": 1}}`,
		`[1, 2, 3]`,
	} {
		f.Add([]byte(s), uint8(7), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, split, flags uint8) {
		c := NewClientMachine(ClientMachineConfig{
			MaxMessageSize:  1024,
			SkipGreeting:    flags&1 != 0,
			SkipNegotiation: flags&2 != 0,
			DisableOOB:      flags&4 != 0,
		})
		issued := map[uint64]bool{}
		for range 3 {
			id, err := c.Execute("query-status", nil)
			require.NoError(t, err)
			issued[id] = true
		}
		sent, got, err := feedChunks[Received](t, c, data, int(split%32)+1, flags&8 != 0)
		checkTerminal[Received](t, c, err)
		if err != nil {
			require.Equal(t, ClientStateFailed, c.State())
			_, xerr := c.Execute("x", nil)
			require.Equal(t, err, xerr)
		}
		// Everything the client sent is a stream of valid JSON objects.
		var d jsonstream.Decoder
		d.Feed(sent)
		for v, derr := d.Next(); v != nil || derr != nil; v, derr = d.Next() {
			require.NoError(t, derr)
			require.Equal(t, byte('{'), v[0])
		}
		replied := map[uint64]bool{}
		for _, r := range got {
			switch r.Kind {
			case ReceivedKindReply:
				require.True(t, issued[r.ID], "reply to id %d that was never issued", r.ID)
				require.False(t, replied[r.ID], "second reply to id %d", r.ID)
				replied[r.ID] = true
				require.True(t, json.Valid(r.Response.Raw))
				require.True(t, (r.Response.Error == nil) != (r.Response.Return == nil))
			case ReceivedKindEvent:
				require.True(t, json.Valid(r.Event.Raw))
			case ReceivedKindIDLessError:
				require.NotNil(t, r.Response.Error)
			}
		}
	})
}

func FuzzServerMachine(f *testing.F) {
	for _, tc := range protocolCases {
		f.Add([]byte(tc.in), uint8(5))
	}
	f.Add([]byte(`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}{"exec-oob":"x","id":[1]}{"execute":"y","arguments":{"a":"\u00e9"}}`), uint8(3))
	f.Add([]byte(`{"execute":"qmp_capabilities"} junk {"execute": garbage}`+"\xff"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		s := NewServerMachine(ServerMachineConfig{MaxMessageSize: 1024})
		sent, got, err := feedChunks[Command](t, s, data, int(split%32)+1, split&64 != 0)
		checkTerminal[Command](t, s, err)
		ended := err == io.EOF
		for _, c := range got {
			require.True(t, s.Negotiated())
			require.True(t, json.Valid(c.Raw))
			require.True(t, c.Arguments == nil || c.Arguments[0] == '{')
			if err != nil {
				// Terminal (a clean end included: QEMU drops a closed
				// client's replies): answers are refused with the error.
				require.Equal(t, err, s.Return(c.ID, nil))
				continue
			}
			// Answering echoes the id; the answer must stay valid JSON.
			require.NoError(t, s.Return(c.ID, nil))
		}
		more, _, _ := drain[Command](t, s)
		sent = append(sent, more...)
		var d jsonstream.Decoder
		d.Feed(sent)
		n := 0
		for v, derr := d.Next(); v != nil || derr != nil; v, derr = d.Next() {
			require.NoError(t, derr, "server output: %q", sent)
			require.Equal(t, byte('{'), v[0])
			n++
		}
		if err == nil {
			require.GreaterOrEqual(t, n, 1+len(got), "greeting plus one reply per command")
		}
		if err != nil && !ended {
			var se *jsonstream.SyntaxError
			require.True(t, errors.As(err, &se) || errors.Is(err, action.ErrLimit), "unexpected error %v", err)
		}
	})
}
