package qmp

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
)

// protocolCases are inputs a QMP server answers by itself, each with exactly
// one reply, and the reply QEMU 7.2 gives (checked against the real QEMU in
// TestServerMatchesQEMU). They run in order on one connection.
var protocolCases = []struct{ in, want string }{
	{`{"execute":"query-version","id":1}`,
		`{"id": 1, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`},
	{`{"execute":"query-version"}`,
		`{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`},
	{`{"foo":1}`, `{"error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}`},
	{`{"id":5}`, `{"id": 5, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`},
	{`{"exec-oob":"qmp_capabilities","id":"x"}`, `{"id": "x", "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`},
	{`{"execute":"qmp_capabilities","id":6,"control":1}`, `{"id": 6, "error": {"class": "GenericError", "desc": "QMP input member 'control' is unexpected"}}`},
	{`[1,2]`, `{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`},
	{`"str"`, `{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}`},
	{`{"execute":"qmp_capabilities","id":2,"arguments":{"enable":["foo"]}}`,
		`{"id": 2, "error": {"class": "GenericError", "desc": "Parameter 'null' does not accept value 'foo'"}}`},
	{`{"execute":"qmp_capabilities","id":3,"arguments":{"x":1}}`, `{"id": 3, "error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}`},
	{`{"execute":"qmp_capabilities","id":4,"arguments":{"enable":"oob"}}`,
		`{"id": 4, "error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable', expected: array"}}`},
	{`{"execute":"qmp_capabilities","id":{"a": [1, 2]},"arguments":{"enable":["oob"]}}`, `{"return": {}, "id": {"a": [1, 2]}}`},
	{`{"execute":"qmp_capabilities","id":7}`,
		`{"id": 7, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}`},
	{`{"execute":"query-status","id":8,"arguments":[1]}`, `{"id": 8, "error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}`},
	{`{"execute":1,"id":9}`, `{"id": 9, "error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}}`},
	{`{"execute":"query-status","exec-oob":"x","id":10}`, `{"id": 10, "error": {"class": "GenericError", "desc": "QMP input member 'execute' clashes with 'exec-oob'"}}`},
	{`{"execute":"query-status","id":11,"extra":1}`, `{"id": 11, "error": {"class": "GenericError", "desc": "QMP input member 'extra' is unexpected"}}`},
	{`{"execute":"query-status","id":12,"id":13}`, `{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}`},
	{`{"execute":"query-status","execute":"stop"}`, `{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}`},
	{strings.Repeat("[", 1100) + strings.Repeat("]", 1100)[:1] + `}`, ""}, // replies differ in number: not compared
}

func TestServerProtocolReplies(t *testing.T) {
	s := NewServerMachine(ServerMachineConfig{})
	sent, got, err := drain[Command](t, s)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "wirereactor"}, "capabilities": ["oob"]}}`+"\r\n", string(sent))
	for _, tc := range protocolCases {
		if tc.want == "" {
			continue
		}
		out, cmds, err := feedServer(t, s, tc.in)
		require.NoError(t, err)
		require.Empty(t, cmds, "input %s", tc.in)
		require.Equal(t, tc.want+"\r\n", out, "input %s", tc.in)
	}
	require.True(t, s.Negotiated())
	require.True(t, s.OOBEnabled())
}

func TestServerParseErrorsResynchronise(t *testing.T) {
	s := negotiatedServer(t, ServerMachineConfig{})
	out, cmds, err := feedServer(t, s, `{"execute": garbage, "id":1}{"execute":"query-status","id":2}`+"\xff"+`{"execute":"cont","id":3}`)
	require.NoError(t, err)
	require.Equal(t,
		`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid character 'g' looking for a value"}}`+"\r\n"+
			`{"error": {"class": "GenericError", "desc": "JSON parse error, invalid character 0xff looking for a value"}}`+"\r\n", out)
	require.Len(t, cmds, 2)
	require.Equal(t, "query-status", cmds[0].Name)
	require.Equal(t, "cont", cmds[1].Name)

	deep := strings.Repeat("[", 1025)
	out, _, err = feedServer(t, s, deep)
	require.NoError(t, err)
	require.Equal(t, `{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}`+"\r\n", out)
}

func negotiatedServer(t *testing.T, cfg ServerMachineConfig) *ServerMachine {
	t.Helper()
	s := NewServerMachine(cfg)
	_, _, err := drain[Command](t, s)
	require.NoError(t, err)
	out, _, err := feedServer(t, s, `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":0}`)
	require.NoError(t, err)
	require.Equal(t, `{"return": {}, "id": 0}`+"\r\n", out)
	return s
}

func TestServerDeliversCommands(t *testing.T) {
	s := negotiatedServer(t, ServerMachineConfig{})
	in := `{"execute": "device_del", "arguments": {"id": "net0"}, "id": 1.0}` +
		"\r\n{\n \"exec-oob\": \"migrate-pause\",\n \"id\": \"\\u00e9\"\n}" +
		`{"execute":"stop"}`
	_, cmds, err := feedServer(t, s, in)
	require.NoError(t, err)
	require.Len(t, cmds, 3)
	require.Equal(t, "device_del", cmds[0].Name)
	require.False(t, cmds[0].OOB)
	require.Equal(t, `{"id": "net0"}`, string(cmds[0].Arguments))
	require.Equal(t, `1.0`, string(cmds[0].ID), "ids are kept verbatim")
	require.Equal(t, "migrate-pause", cmds[1].Name)
	require.True(t, cmds[1].OOB)
	require.Equal(t, `"\u00e9"`, string(cmds[1].ID))
	require.Nil(t, cmds[1].Arguments)
	require.Equal(t, "stop", cmds[2].Name)
	require.Nil(t, cmds[2].ID)

	// Replies echo the raw id verbatim.
	require.NoError(t, s.Return(cmds[0].ID, nil))
	require.NoError(t, s.ReturnError(cmds[1].ID, "GenericError", `say "no"`))
	ok, err := s.SendEvent("STOP", nil, time.Unix(1795265050, 841166999))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.Return(cmds[2].ID, []byte(`{"status": "paused"}`)))
	_, err = s.SendEvent("DEVICE_DELETED", []byte(`{"device": "net0"}`), time.Unix(5, 6000))
	require.NoError(t, err)
	out, _, err := drain[Command](t, s)
	require.NoError(t, err)
	require.Equal(t, `{"return": {}, "id": 1.0}`+"\r\n"+
		`{"id": "\u00e9", "error": {"class": "GenericError", "desc": "say \"no\""}}`+"\r\n"+
		`{"timestamp": {"seconds": 1795265050, "microseconds": 841166}, "event": "STOP"}`+"\r\n"+
		`{"return": {"status": "paused"}}`+"\r\n"+
		`{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "DEVICE_DELETED", "data": {"device": "net0"}}`+"\r\n", string(out))

	require.EqualError(t, s.Return(nil, []byte(`{"a":`)), "qmp: return value is not valid JSON")
}

func TestServerCommandsOwnTheirMemory(t *testing.T) {
	s := negotiatedServer(t, ServerMachineConfig{})
	buf := []byte(`{"execute":"a","arguments":{"n":1},"id":1}`)
	s.Feed(buf)
	a := s.Next()
	require.Equal(t, action.KindDeliver, a.Kind)
	require.Equal(t, action.KindWantMore, s.Next().Kind)
	copy(buf, `{"execute":"b","arguments":{"n":2},"id":2}`)
	require.Equal(t, `{"n":1}`, string(a.Value.Arguments))
	require.Equal(t, `1`, string(a.Value.ID))
	require.Equal(t, `{"execute":"a","arguments":{"n":1},"id":1}`, string(a.Value.Raw))
}

func TestServerEventsWaitForNegotiation(t *testing.T) {
	s := NewServerMachine(ServerMachineConfig{Capabilities: []string{}, Version: Version{QEMU: VersionTriple{8, 0, 1}, Package: "x"}})
	ok, err := s.SendEvent("STOP", nil, time.Unix(1, 0))
	require.NoError(t, err)
	require.False(t, ok, "QEMU sends no events before negotiation")
	greeting, _, err := drain[Command](t, s)
	require.NoError(t, err)
	require.Equal(t, `{"QMP": {"version": {"qemu": {"micro": 1, "minor": 0, "major": 8}, "package": "x"}, "capabilities": []}}`+"\r\n", string(greeting))
	out, _, err := feedServer(t, s, `{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":1}`)
	require.NoError(t, err)
	require.Equal(t, `{"id": 1, "error": {"class": "GenericError", "desc": "Capability 'oob' not available"}}`+"\r\n", out)
	out, _, err = feedServer(t, s, `{"execute":"qmp_capabilities","id":2}{"exec-oob":"x","id":3}`)
	require.NoError(t, err)
	require.Equal(t, `{"return": {}, "id": 2}`+"\r\n"+
		`{"id": 3, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`+"\r\n", out)
	require.False(t, s.OOBEnabled())
}

func TestServerLimits(t *testing.T) {
	s := negotiatedServer(t, ServerMachineConfig{MaxMessageSize: 80})
	_, _, err := feedServer(t, s, `{"execute":"x","arguments":{"blob":"`+strings.Repeat("A", 100)+`"}}`)
	require.EqualError(t, err, "jsonstream: json message bytes: 81 exceeds the limit of 80")
	require.ErrorIs(t, err, action.ErrLimit)
	require.Equal(t, err, s.Next().Err, "terminal")
	require.Equal(t, err, s.Return(nil, nil))

	s = negotiatedServer(t, ServerMachineConfig{})
	s.Feed([]byte(`{"execute":"x"`))
	s.FeedEOF()
	_, _, err = drain[Command](t, s)
	require.ErrorContains(t, err, "unexpected end of input inside a value")
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NotErrorIs(t, err, io.EOF)
}

func TestServerCleanEOF(t *testing.T) {
	s := negotiatedServer(t, ServerMachineConfig{})
	s.Feed([]byte(`{"execute": "stop", "id": 1}`))
	s.FeedEOF()
	sent, cmds, err := drain[Command](t, s)
	require.Empty(t, sent)
	require.Len(t, cmds, 1, "what came before the end is delivered first")
	require.Equal(t, io.EOF, err, "a clean end is a terminal io.EOF, so a loop calling Next ends")
	require.Equal(t, action.Fail[Command](io.EOF), s.Next(), "terminal")
}
