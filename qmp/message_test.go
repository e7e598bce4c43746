package qmp

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    Response
		wantErr string
	}{
		{"success", `{"return": {"a": 1}, "id": 7}`,
			Response{ID: []byte(`7`), Return: []byte(`{"a": 1}`)}, ""},
		{"success without id", `{"return": []}`, Response{Return: []byte(`[]`)}, ""},
		{"error", `{"id": "x", "error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}`,
			Response{ID: []byte(`"x"`), Error: &ErrorInfo{Class: "DeviceNotFound", Desc: "Device 'nope' not found"}}, ""},
		{"escaped desc and keys", `{"error": {"cl\u0061ss": "GenericError", "desc": "a \"quoted\" \u00e9"}}`,
			Response{Error: &ErrorInfo{Class: "GenericError", Desc: `a "quoted" é`}}, ""},
		{"error without desc", `{"error": {"class": "GenericError"}}`, Response{},
			"error member is not an object with string members 'class' and 'desc'"},
		{"error not an object", `{"error": "bad"}`, Response{},
			"error member is not an object with string members 'class' and 'desc'"},
		{"an event", `{"event": "STOP"}`, Response{}, "message is not a response: it has neither 'return' nor 'error'"},
		{"not JSON", `{"return": `, Response{}, "response is not valid JSON"},
		{"not an object", `[1]`, Response{}, "server message is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.raw))
			if tt.wantErr != "" {
				require.EqualError(t, err, "qmp: "+tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.want.Raw = []byte(tt.raw)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseEvent(t *testing.T) {
	ev, err := ParseEvent([]byte(`{"timestamp": {"seconds": 1795265054, "microseconds": 852402}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`))
	require.NoError(t, err)
	require.Equal(t, "SHUTDOWN", ev.Name)
	require.Equal(t, `{"guest": false, "reason": "host-qmp-quit"}`, string(ev.Data))
	require.Equal(t, time.Date(2026, 11, 21, 12, 44, 14, 852402000, time.UTC), ev.Timestamp.UTC(),
		"seconds and microseconds, not nanoseconds")

	for _, tt := range []struct{ raw, wantErr string }{
		{`{"event": 1}`, "event member 'event' is not a string"},
		{`{"event": "X", "timestamp": {"seconds": 1}}`, "event timestamp is not an object with integer 'seconds' and 'microseconds'"},
		{`{"event": "X", "timestamp": {"seconds": "1", "microseconds": 2}}`, "event timestamp is not an object with integer 'seconds' and 'microseconds'"},
		{`{"return": {}}`, "message is not an event: it lacks member 'event'"},
	} {
		_, err := ParseEvent([]byte(tt.raw))
		require.EqualError(t, err, "qmp: "+tt.wantErr, tt.raw)
	}
}

func TestParseGreeting(t *testing.T) {
	g, err := ParseGreeting([]byte(qemuGreeting))
	require.NoError(t, err)
	require.Equal(t, "7.2.22", g.Version.QEMU.String())
	require.True(t, g.HasCapability("oob"))
	require.False(t, g.HasCapability("other"))

	for _, tt := range []struct{ raw, wantErr string }{
		{`{"other": {}}`, "greeting lacks member 'QMP'"},
		{`{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}}}`, "greeting lacks member 'QMP.capabilities'"},
		{`{"QMP": {"version": "7.2", "capabilities": []}}`, "greeting does not decode: json: cannot unmarshal string into Go struct field .QMP.version of type qmp.Version"},
	} {
		_, err := ParseGreeting([]byte(tt.raw))
		require.EqualError(t, err, "qmp: "+tt.wantErr, tt.raw)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "tab\tnl\ncr\r\x00\x1f\x7f", "é€😀", "bad\xffutf8\xc3"} {
		enc := appendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(enc, &back), "%q encodes to %s", s, enc)
		want, _ := json.Marshal(s) // encoding/json's view, including U+FFFD for bad bytes
		var wantBack string
		require.NoError(t, json.Unmarshal(want, &wantBack))
		require.Equal(t, wantBack, back, "%q", s)
	}
}

func TestErrorsMatch(t *testing.T) {
	ge := &GreetingError{Err: io.ErrUnexpectedEOF}
	require.ErrorIs(t, ge, ErrProtocol)
	require.ErrorIs(t, ge, io.ErrUnexpectedEOF)
	ne := &NegotiationError{Err: io.ErrUnexpectedEOF}
	require.ErrorIs(t, ne, ErrProtocol)
	require.ErrorIs(t, ne, io.ErrUnexpectedEOF)
	pe := &ProtocolError{Msg: "server sent junk", Raw: []byte(strings.Repeat("x", 300)), Err: io.ErrUnexpectedEOF}
	require.ErrorIs(t, pe, ErrProtocol)
	require.ErrorIs(t, pe, io.ErrUnexpectedEOF)
	require.Equal(t, "qmp: server sent junk: unexpected EOF (message: "+strings.Repeat("x", 200)+"…)", pe.Error())
}

// Keys are matched by their decoded name: an escaped spelling routes the
// same, and an undecodable key is ignored.
func TestParseServerMessageEscapedKeys(t *testing.T) {
	var m serverMessage
	require.NoError(t, parseServerMessage([]byte(`{"\u0072eturn": {"a": 1}, "\u0069d": 7, "\ud800x": 1}`), &m))
	require.Equal(t, msgResponse, m.kind)
	require.Equal(t, `{"a": 1}`, string(m.ret))
	require.Equal(t, `7`, string(m.id))
	require.NoError(t, parseServerMessage([]byte(`{"ev\u0065nt": "X", "data": {}}`), &m))
	require.Equal(t, msgEvent, m.kind)
	require.Nil(t, m.ret, "the earlier message's fields are cleared")
}
