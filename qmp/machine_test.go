package qmp

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
)

// drain runs m until WantMore or Error and returns the bytes it sent, what it
// delivered, and its error.
func drain[T any](t testing.TB, m action.Machine[T]) (sent []byte, got []T, err error) {
	acts := actiontest.Drain(m)
	require.NotErrorIs(t, acts.Err(), actiontest.ErrRunaway)
	return acts.Sent(), acts.Delivered(), acts.Err()
}

// feedClient feeds the client what the server says and returns the client's
// output and deliveries.
func feedClient(t *testing.T, c *ClientMachine, in string) (string, []Received, error) {
	t.Helper()
	c.Feed([]byte(in))
	sent, got, err := drain[Received](t, c)
	return string(sent), got, err
}

func feedServer(t *testing.T, s *ServerMachine, in string) (string, []Command, error) {
	t.Helper()
	s.Feed([]byte(in))
	sent, got, err := drain[Command](t, s)
	return string(sent), got, err
}

const qemuGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}` + "\r\n"

func kinds(rs []Received) []string {
	var k []string
	for _, r := range rs {
		k = append(k, r.String())
	}
	return k
}

func TestClientHandshake(t *testing.T) {
	tests := []struct {
		name      string
		cfg       ClientMachineConfig
		greeting  string
		wantSent  string
		wantKinds []string
		wantOOB   bool
	}{
		{"qemu offers oob", ClientMachineConfig{}, qemuGreeting,
			`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 1}` + "\n", []string{"greeting"}, true},
		{"oob disabled", ClientMachineConfig{DisableOOB: true}, qemuGreeting,
			`{"execute": "qmp_capabilities", "id": 1}` + "\n", []string{"greeting"}, false},
		{"no oob offered", ClientMachineConfig{}, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 2}, "package": ""}, "capabilities": []}}`,
			`{"execute": "qmp_capabilities", "id": 1}` + "\n", []string{"greeting"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClientMachine(tt.cfg)
			require.Equal(t, ClientStateAwaitingGreeting, c.State())
			sent, got, err := feedClient(t, c, tt.greeting)
			require.NoError(t, err)
			require.Equal(t, tt.wantSent, sent)
			require.Equal(t, tt.wantKinds, kinds(got))
			require.Equal(t, ClientStateNegotiating, c.State())
			require.False(t, c.OOBEnabled(), "oob is enabled only once the server agrees")

			sent, got, err = feedClient(t, c, `{"return": {}, "id": 1}`+"\r\n")
			require.NoError(t, err)
			require.Empty(t, sent)
			require.Equal(t, []string{"ready"}, kinds(got))
			require.Equal(t, ClientStateRunning, c.State())
			require.Equal(t, tt.wantOOB, c.OOBEnabled())
			require.Zero(t, c.Pending())
		})
	}
}

func TestClientGreetingParsed(t *testing.T) {
	c := NewClientMachine(ClientMachineConfig{})
	_, got, err := feedClient(t, c, qemuGreeting)
	require.NoError(t, err)
	require.Len(t, got, 1)
	g := got[0].Greeting
	require.Equal(t, Version{QEMU: VersionTriple{7, 2, 22}, Package: "Debian 1:7.2+dfsg-7+deb12u18+b3"}, g.Version)
	require.Equal(t, []string{"oob"}, g.Capabilities)
	require.Equal(t, qemuGreeting[:len(qemuGreeting)-2], string(g.Raw))
	require.Same(t, g, c.Greeting())
}

func TestClientSkipGreetingAndNegotiation(t *testing.T) {
	// qemu-ga: no greeting, no negotiation. Running at once.
	c := NewClientMachine(ClientMachineConfig{SkipGreeting: true, SkipNegotiation: true})
	require.Equal(t, ClientStateRunning, c.State())
	id, err := c.Execute("guest-ping", nil)
	require.NoError(t, err)
	sent, got, err := drain[Received](t, c)
	require.NoError(t, err)
	require.Equal(t, []string{"ready"}, kinds(got))
	require.Equal(t, fmt.Sprintf(`{"execute": "guest-ping", "id": %d}`+"\n", id), string(sent))

	// Negotiation without a greeting starts at once.
	c = NewClientMachine(ClientMachineConfig{SkipGreeting: true})
	require.Equal(t, ClientStateNegotiating, c.State())
	sent, _, err = drain[Received](t, c)
	require.NoError(t, err)
	require.Equal(t, `{"execute": "qmp_capabilities", "id": 1}`+"\n", string(sent))

	// A greeting without negotiation: ready right after it.
	c = NewClientMachine(ClientMachineConfig{SkipNegotiation: true})
	sentS, got, err := feedClient(t, c, qemuGreeting)
	require.NoError(t, err)
	require.Empty(t, sentS)
	require.Equal(t, []string{"greeting", "ready"}, kinds(got))
	require.False(t, c.OOBEnabled())
}

// running returns a client that has finished the handshake with QEMU's greeting.
func running(t *testing.T) *ClientMachine {
	t.Helper()
	c := NewClientMachine(ClientMachineConfig{})
	_, _, err := feedClient(t, c, qemuGreeting)
	require.NoError(t, err)
	_, got, err := feedClient(t, c, `{"return": {}, "id": 1}`+"\r\n")
	require.NoError(t, err)
	require.Equal(t, []string{"ready"}, kinds(got))
	return c
}

func TestClientCommandsBeforeReadyAreHeld(t *testing.T) {
	c := NewClientMachine(ClientMachineConfig{})
	id, err := c.Execute("query-status", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), id)
	_, err = c.ExecuteOOB("migrate-pause", nil)
	require.ErrorIs(t, err, ErrOOBUnavailable)
	sentB, _, err := drain[Received](t, c)
	require.NoError(t, err)
	require.Empty(t, sentB, "nothing is sent before the greeting")

	sent, _, err := feedClient(t, c, qemuGreeting)
	require.NoError(t, err)
	require.Equal(t, `{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 2}`+"\n", sent)

	sent, got, err := feedClient(t, c, `{"return": {}, "id": 2}`)
	require.NoError(t, err)
	require.Equal(t, []string{"ready"}, kinds(got))
	require.Equal(t, `{"execute": "query-status", "id": 1}`+"\n", sent)
}

func TestClientReplies(t *testing.T) {
	c := running(t)
	a, err := c.Execute("query-status", nil)
	require.NoError(t, err)
	b, err := c.Execute("device_del", []byte(`{"id": "net\"0"}`))
	require.NoError(t, err)
	o, err := c.ExecuteOOB("migrate-pause", nil)
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 3, 4}, []uint64{a, b, o})
	sent, _, err := drain[Received](t, c)
	require.NoError(t, err)
	require.Equal(t, `{"execute": "query-status", "id": 2}`+"\n"+
		`{"execute": "device_del", "arguments": {"id": "net\"0"}, "id": 3}`+"\n"+
		`{"exec-oob": "migrate-pause", "id": 4}`+"\n", string(sent), "commands are pipelined in one send")
	require.Equal(t, 3, c.Pending())

	// The oob reply overtakes; ids are compared by value (QEMU writes 2.0 as 2,
	// but another server may not); an event comes between.
	_, got, err := feedClient(t, c,
		`{"id": 4, "error": {"class": "GenericError", "desc": "migrate-pause is currently only supported during postcopy-active state"}}`+"\r\n"+
			`{"timestamp": {"seconds": 1795265050, "microseconds": 841166}, "event": "STOP"}`+"\r\n"+
			`{"return": {"status": "paused", "running": false}, "id": 2.0}`+"\r\n"+
			`{"return": {}, "id": 3e0}`+"\r\n")
	require.NoError(t, err)
	require.Len(t, got, 4)

	require.Equal(t, ReceivedKindReply, got[0].Kind)
	require.Equal(t, o, got[0].ID)
	require.Equal(t, &ErrorInfo{Class: "GenericError", Desc: "migrate-pause is currently only supported during postcopy-active state"}, got[0].Response.Error)
	require.Nil(t, got[0].Response.Return)

	require.Equal(t, ReceivedKindEvent, got[1].Kind)
	require.Equal(t, "STOP", got[1].Event.Name)
	require.Equal(t, time.Unix(1795265050, 841166000), got[1].Event.Timestamp)
	require.Nil(t, got[1].Event.Data)

	require.Equal(t, ReceivedKindReply, got[2].Kind)
	require.Equal(t, a, got[2].ID)
	require.JSONEq(t, `{"status": "paused", "running": false}`, string(got[2].Response.Return))
	require.Equal(t, "2.0", string(got[2].Response.ID))
	require.Nil(t, got[2].Response.Error)

	require.Equal(t, b, got[3].ID)
	require.Equal(t, "{}", string(got[3].Response.Return))
	require.Zero(t, c.Pending())
}

func TestClientDeliveredValuesOwnTheirMemory(t *testing.T) {
	// go-qemu handed callers a view of its read buffer; the next reply
	// overwrote it. Ours are copies: scribbling over the input, feeding more
	// through the same buffer, must not change what was delivered.
	c := running(t)
	a, _ := c.Execute("query-name", nil)
	b, _ := c.Execute("query-name", nil)
	_, _, err := drain[Received](t, c)
	require.NoError(t, err)

	buf := []byte(fmt.Sprintf(`{"return": {"name": "first"}, "id": %d}`, a))
	c.Feed(buf)
	first := c.Next()
	require.Equal(t, action.KindDeliver, first.Kind)
	require.Equal(t, action.KindWantMore, c.Next().Kind)
	copy(buf, fmt.Sprintf(`{"return": {"name": "other"}, "id": %d}`, b))
	c.Feed(buf)
	second := c.Next()
	require.Equal(t, action.KindDeliver, second.Kind)
	require.Equal(t, `{"name": "first"}`, string(first.Value.Response.Return))
	require.Equal(t, `{"name": "other"}`, string(second.Value.Response.Return))

	// Split messages go through the decoder's reused buffer: same rule.
	c2 := running(t)
	ids := [2]uint64{}
	ids[0], _ = c2.Execute("x", nil)
	ids[1], _ = c2.Execute("x", nil)
	_, _, _ = drain[Received](t, c2)
	var replies []Received
	for _, id := range ids {
		msg := fmt.Sprintf(`{"return": {"n": %d}, "id": %d}`, id, id)
		for _, part := range []string{msg[:10], msg[10:]} {
			_, got, err := feedClient(t, c2, part)
			require.NoError(t, err)
			replies = append(replies, got...)
		}
	}
	require.Len(t, replies, 2)
	require.Equal(t, fmt.Sprintf(`{"n": %d}`, ids[0]), string(replies[0].Response.Return))
	require.Equal(t, fmt.Sprintf(`{"n": %d}`, ids[1]), string(replies[1].Response.Return))
	// Appending to a delivered slice cannot overwrite its neighbour.
	r := replies[0].Response
	_ = append(r.Return, "XXXXXXXX"...)
	require.Equal(t, fmt.Sprintf(`{"return": {"n": %d}, "id": %d}`, ids[0], ids[0]), string(r.Raw))
}

func TestClientUnknownIDsAreDroppedAndCounted(t *testing.T) {
	c := running(t)
	id, _ := c.Execute("query-status", nil)
	_, _, _ = drain[Received](t, c)
	_, got, err := feedClient(t, c,
		`{"return": {}, "id": 999}`+
			`{"return": {}, "id": "__aqmp#00001"}`+
			`{"return": {}, "id": -1}`+
			`{"return": {}, "id": 1.5}`+
			fmt.Sprintf(`{"return": {}, "id": %d}`, id))
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprintf("reply #%d {}", id)}, kinds(got))
	require.Equal(t, uint64(4), c.Dropped())

	// A cancelled command's late reply is dropped too.
	id, _ = c.Execute("query-status", nil)
	require.True(t, c.Cancel(id))
	require.False(t, c.Cancel(id))
	_, got, err = feedClient(t, c, fmt.Sprintf(`{"return": {}, "id": %d}`, id))
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, uint64(5), c.Dropped())
}

func TestClientIDsStayUniqueAcrossReset(t *testing.T) {
	// QEMU sends the reply to a command still running when its client left
	// to the next client. The id counter outlives the connection, so the
	// stale reply matches nothing.
	c := running(t)
	stale, _ := c.Execute("query-status", nil)
	_, _, _ = drain[Received](t, c)

	c.Reset()
	require.Equal(t, ClientStateAwaitingGreeting, c.State())
	require.Zero(t, c.Pending())
	sent, _, err := feedClient(t, c, qemuGreeting)
	require.NoError(t, err)
	require.Contains(t, sent, fmt.Sprintf(`"id": %d}`, stale+1), "negotiation takes the next id")
	_, _, err = feedClient(t, c, fmt.Sprintf(`{"return": {}, "id": %d}`, stale+1))
	require.NoError(t, err)
	fresh, _ := c.Execute("query-status", nil)
	require.Greater(t, fresh, stale)
	_, got, err := feedClient(t, c, fmt.Sprintf(`{"return": {"stale": true}, "id": %d}`, stale))
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, uint64(1), c.Dropped())
}

func TestClientIDsStayUniqueAcrossMachines(t *testing.T) {
	// A driver that makes a machine per connection carries the ids over.
	first := running(t)
	stale, _ := first.Execute("query-status", nil)
	second := NewClientMachine(ClientMachineConfig{IDBase: first.LastID()})
	_, _, err := feedClient(t, second, qemuGreeting)
	require.NoError(t, err)
	_, got, err := feedClient(t, second, fmt.Sprintf(`{"return": {"stale": true}, "id": %d}{"return": {}, "id": %d}`, stale, stale+1))
	require.NoError(t, err)
	require.Equal(t, []string{"ready"}, kinds(got), "the stale reply is not taken for the negotiation reply")
	require.Equal(t, uint64(1), second.Dropped())
	id, _ := second.Execute("query-status", nil)
	require.Equal(t, stale+2, id)
	require.Equal(t, id, second.LastID())
}

func TestClientIDLessErrors(t *testing.T) {
	const idless = `{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\uFFFD'"}}` + "\r\n"

	// Nothing in flight: delivered for logging, the session goes on.
	c := running(t)
	_, got, err := feedClient(t, c, idless)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, ReceivedKindIDLessError, got[0].Kind)
	require.Equal(t, "JSON parse error, stray '\uFFFD'", got[0].Response.Error.Desc)
	require.Nil(t, got[0].Response.ID)

	// Exactly one in flight: it is that command's answer.
	id, _ := c.Execute("query-status", nil)
	_, got, err = feedClient(t, c, idless)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, ReceivedKindReply, got[0].Kind)
	require.Equal(t, id, got[0].ID)
	require.Equal(t, "GenericError", got[0].Response.Error.Class)
	require.Zero(t, c.Pending())
	require.Equal(t, ClientStateRunning, c.State())

	// More than one: nobody can tell whose it is.
	_, _ = c.Execute("a", nil)
	_, _ = c.Execute("b", nil)
	_, _, err = feedClient(t, c, idless)
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, ErrProtocol)
	require.Contains(t, err.Error(), "2 commands were in flight")
	require.Equal(t, ClientStateFailed, c.State())
	require.Equal(t, action.KindError, c.Next().Kind, "terminal")
	_, err = c.Execute("c", nil)
	require.ErrorIs(t, err, ErrProtocol)
}

func TestClientHandshakeFailures(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		eof     bool
		want    any
		wantMsg string
	}{
		{"not a greeting", []string{`{"return": {}}`}, false, &GreetingError{},
			"qmp: bad greeting: first message lacks member 'QMP'"},
		{"greeting not an object", []string{`[1]`}, false, &GreetingError{},
			"qmp: bad greeting: message is not a JSON object"},
		{"greeting without version", []string{`{"QMP": {"capabilities": []}}`}, false, &GreetingError{},
			"qmp: bad greeting: greeting lacks member 'QMP.version'"},
		{"end of stream before greeting", nil, true, &GreetingError{},
			"qmp: bad greeting: unexpected EOF"},
		{"negotiation refused", []string{qemuGreeting, `{"id": 1, "error": {"class": "GenericError", "desc": "Parameter 'null' does not accept value 'oob'"}}`}, false,
			&NegotiationError{}, "qmp: capabilities negotiation failed: GenericError: Parameter 'null' does not accept value 'oob'"},
		{"end of stream while negotiating", []string{qemuGreeting}, true, &NegotiationError{},
			"qmp: capabilities negotiation failed: unexpected EOF"},
		{"garbage from the server", []string{qemuGreeting, `{"return": {}, "id": 1}`, `{"id": 1} junk`}, false,
			&ProtocolError{}, "qmp: server sent a message with neither 'return', 'error' nor 'event' (message: {\"id\": 1})"},
		{"message too large", []string{qemuGreeting, `{"return": {}, "id": 1}`, `{"return": "` + strings.Repeat("x", 300) + `"}`}, false,
			nil, "jsonstream: json message bytes: 257 exceeds the limit of 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClientMachine(ClientMachineConfig{MaxMessageSize: 256})
			var err error
			for _, in := range tt.in {
				if _, _, err = feedClient(t, c, in); err != nil {
					break
				}
			}
			if tt.eof && err == nil {
				c.FeedEOF()
				_, _, err = drain[Received](t, c)
			}
			require.Error(t, err)
			require.Equal(t, tt.wantMsg, err.Error())
			switch tt.want.(type) {
			case *GreetingError:
				var ge *GreetingError
				require.ErrorAs(t, err, &ge)
			case *NegotiationError:
				var ne *NegotiationError
				require.ErrorAs(t, err, &ne)
			case *ProtocolError:
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
			}
			require.Equal(t, ClientStateFailed, c.State())
			require.Equal(t, err, c.Next().Err, "the machine is terminal")
		})
	}
}

func TestClientCleanEOF(t *testing.T) {
	// quit: SHUTDOWN, then the reply, then the connection closes.
	c := running(t)
	id, _ := c.Execute("quit", nil)
	_, _, _ = drain[Received](t, c)
	c.Feed([]byte(`{"timestamp": {"seconds": 1795265054, "microseconds": 852402}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}` + "\r\n" +
		fmt.Sprintf(`{"return": {}, "id": %d}`, id) + "\r\n"))
	c.FeedEOF()
	_, got, err := drain[Received](t, c)
	require.Equal(t, io.EOF, err, "a clean end is a terminal io.EOF, so a loop calling Next ends")
	require.Equal(t, []string{"event SHUTDOWN", fmt.Sprintf("reply #%d {}", id)}, kinds(got))
	require.JSONEq(t, `{"guest": false, "reason": "host-qmp-quit"}`, string(got[0].Event.Data))
	require.Equal(t, action.Fail[Received](io.EOF), c.Next(), "terminal")
	c.Feed([]byte(`{"return": {}, "id": 9}`))
	require.Equal(t, action.Fail[Received](io.EOF), c.Next(), "Feed after the end is a no-op")
}

func TestClientEOFInsideAMessageIsUnexpected(t *testing.T) {
	c := running(t)
	c.Feed([]byte(`{"return": {}, "id"`))
	c.FeedEOF()
	_, _, err := drain[Received](t, c)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NotErrorIs(t, err, io.EOF)
}

func TestClientExecuteRejectsBadInput(t *testing.T) {
	c := running(t)
	_, err := c.Execute("", nil)
	require.EqualError(t, err, "qmp: empty command name")
	_, err = c.Execute("x", []byte(`[1]`))
	require.EqualError(t, err, "qmp: arguments of x are not a JSON object")
	_, err = c.Execute("x", []byte(`{"a":`))
	require.Error(t, err)
	// Names are JSON-escaped.
	id, err := c.Execute("we\"ird\n", []byte(` {"a": 1}`))
	require.NoError(t, err)
	sent, _, _ := drain[Received](t, c)
	var msg map[string]any
	require.NoError(t, json.Unmarshal(sent, &msg))
	require.Equal(t, map[string]any{"execute": "we\"ird\n", "arguments": map[string]any{"a": 1.0}, "id": float64(id)}, msg)
}

func TestSameID(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`1`, `1`, true},
		{`1.0`, `1`, true},
		{`1e3`, `1000`, true},
		{`-0`, `0`, true},
		{`1.5`, `1.5`, true},
		{`1.5`, `15e-1`, true},
		{`2`, `1`, false},
		{`"1"`, `1`, false},
		{`"\u00e9"`, `"\u00E9"`, true},
		{`"\u00e9"`, `"é"`, true},
		{`"a"`, `"b"`, false},
		{`{"a": [1, 2]}`, `{"a":[1,2.0]}`, true},
		{`{"a": 1, "b": 2}`, `{"b": 2, "a": 1}`, true},
		{`null`, `null`, true},
		{`true`, `false`, false},
		{``, ``, true},
		{``, `1`, false},
		{`12345678901234567890`, `12345678901234567890`, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, SameID(json.RawMessage(tt.a), json.RawMessage(tt.b)), "%s vs %s", tt.a, tt.b)
		require.Equal(t, tt.want, SameID(json.RawMessage(tt.b), json.RawMessage(tt.a)), "%s vs %s", tt.b, tt.a)
	}
}
