package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/qmp"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		name    string
		args    string // JSON, "" for none
		oob     bool
		wantErr string
	}{
		{line: "query-status", name: "query-status"},
		{line: "  query-status   ", name: "query-status"},
		{line: "", name: ""},
		{line: "# a comment", name: ""},
		{line: "stop a=1 b=true c={\"x\":1}", name: "stop", args: `{"a":1,"b":true,"c":{"x":1}}`},
		{line: "cmd s=hello n=-1.5 f=False z=null", name: "cmd", args: `{"f":false,"n":-1.5,"s":"hello","z":null}`},
		{line: `cmd path=/tmp/disk.img q="1" sq='two words'`, name: "cmd", args: `{"path":"/tmp/disk.img","q":"1","sq":"two words"}`},
		{line: `cmd obj={"a": [1, 2], "b": "c d"} l=[1, {"x": "]"}]`, name: "cmd", args: `{"l":[1,{"x":"]"}],"obj":{"a":[1,2],"b":"c d"}}`},
		{line: "blockdev-add driver=qcow2 node-name=d file.driver=file file.filename=/x file.aio.mode=native",
			name: "blockdev-add", args: `{"driver":"qcow2","file":{"aio":{"mode":"native"},"driver":"file","filename":"/x"},"node-name":"d"}`},
		{line: `{"execute": "query-status", "id": 7}`, name: "query-status"},
		{line: `{"execute": "stop", "arguments": {"a": 1}}`, name: "stop", args: `{"a": 1}`},
		{line: `{"exec-oob": "migrate-pause"}`, name: "migrate-pause", oob: true},
		{line: "cmd a", wantErr: `syntax error: expected key=value, got "a"`},
		{line: "cmd =1", wantErr: `syntax error: expected key=value, got "=1"`},
		{line: "cmd a=1 a=2", wantErr: `syntax error: key "a" given twice`},
		{line: "cmd a=1 a.b=2", wantErr: `syntax error: key "a" is both a value and an object`},
		{line: "cmd a..b=2", wantErr: `syntax error: empty name in key "a..b"`},
		{line: `cmd a={"x":}`, wantErr: `syntax error: value {"x":} is not valid JSON`},
		{line: `cmd a="open`, wantErr: "syntax error: unterminated \" quote"},
		{line: `cmd a={"x":1`, wantErr: "syntax error: unclosed { or ["},
		{line: `cmd a=1}`, wantErr: "syntax error: unbalanced '}' at column 8"},
		{line: `{"execute": 1}`, wantErr: "syntax error: invalid JSON"},
		{line: `{"arguments": {}}`, wantErr: `syntax error: a JSON command needs "execute" or "exec-oob"`},
		{line: `{"execute": "x", "arguments": [1]}`, wantErr: `syntax error: "arguments" must be an object`},
		{line: `{"execute": "x"} {"execute": "y"}`, wantErr: "syntax error: text after the JSON object"},
		{line: ") ", wantErr: "syntax error: ) outside a transaction"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var p parser
			req, err := p.parse(tt.line)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, errSyntax)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			if tt.name == "" {
				require.Nil(t, req)
				return
			}
			require.NotNil(t, req)
			require.Equal(t, tt.name, req.Name)
			require.Equal(t, tt.oob, req.OOB)
			if tt.args == "" {
				require.Nil(t, req.Args)
			} else {
				require.JSONEq(t, tt.args, string(req.Args))
			}
		})
	}
}

func TestParseTransaction(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		args  string
	}{
		{"multi-line", []string{
			"transaction(",
			"block-dirty-bitmap-add node=n0 name=b0",
			"abort",
			")",
		}, `{"actions":[{"type":"block-dirty-bitmap-add","data":{"name":"b0","node":"n0"}},{"type":"abort","data":{}}]}`},
		{"one line", []string{
			"transaction( abort )",
		}, `{"actions":[{"type":"abort","data":{}}]}`},
		{"first action on the opening line, last on the closing one", []string{
			"transaction( block-dirty-bitmap-add node=n0 name=a",
			"block-dirty-bitmap-clear node=n0 name=a )",
		}, `{"actions":[{"type":"block-dirty-bitmap-add","data":{"name":"a","node":"n0"}},{"type":"block-dirty-bitmap-clear","data":{"name":"a","node":"n0"}}]}`},
		{"empty", []string{"transaction(", ")"}, `{"actions":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p parser
			for i, line := range tt.lines[:len(tt.lines)-1] {
				req, err := p.parse(line)
				require.NoError(t, err, "line %d", i)
				require.Nil(t, req, "line %d sends nothing", i)
				require.Equal(t, "TRANS> ", p.prompt())
			}
			req, err := p.parse(tt.lines[len(tt.lines)-1])
			require.NoError(t, err)
			require.NotNil(t, req)
			require.Equal(t, "transaction", req.Name)
			require.JSONEq(t, tt.args, string(req.Args))
			require.Equal(t, "(QEMU) ", p.prompt())

			// The parser is back to normal mode and the next transaction
			// starts empty.
			req, err = p.parse("transaction( abort )")
			require.NoError(t, err)
			require.JSONEq(t, `{"actions":[{"type":"abort","data":{}}]}`, string(req.Args))
		})
	}
}

func TestParseTransactionErrors(t *testing.T) {
	var p parser
	_, err := p.parse("transaction(")
	require.NoError(t, err)
	_, err = p.parse("transaction(")
	require.ErrorContains(t, err, "transaction( inside a transaction")
	_, err = p.parse("abort x")
	require.ErrorContains(t, err, `expected key=value, got "x"`)

	var q parser
	_, err = q.parse("transaction(abort)")
	require.ErrorContains(t, err, "write a space after transaction(")
}

func TestFormatEvent(t *testing.T) {
	raw := []byte(`{"timestamp": {"seconds": 1795265050, "microseconds": 841166}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}`)
	ev, err := qmpParseEvent(raw)
	require.NoError(t, err)
	require.Equal(t, `event RESET at 2026-11-21T12:44:10.841166Z: {"guest": false, "reason": "host-qmp-system-reset"}`+"\n", formatEvent(ev))

	ev, err = qmpParseEvent([]byte(`{"timestamp": {"seconds": 1795265050, "microseconds": 5}, "event": "STOP"}`))
	require.NoError(t, err)
	require.Equal(t, "event STOP at 2026-11-21T12:44:10.000005Z\n", formatEvent(ev))
}

func TestPrettyKeepsOrder(t *testing.T) {
	require.Equal(t, "{\n    \"z\": 1,\n    \"a\": [\n        2\n    ]\n}", pretty(json.RawMessage(`{"z":1,"a":[2]}`)))
	require.Equal(t, "not json", pretty([]byte("not json")))
}

var qmpParseEvent = qmp.ParseEvent

func TestOneLine(t *testing.T) {
	require.Equal(t, `{"z": 1, "a": [2, "x, y: \"z\""], "b": {}}`, oneLine(json.RawMessage(`{"z":1,  "a":[2,"x, y: \"z\""],"b":{}}`)))
	require.Equal(t, "not json", oneLine([]byte("not json")))
}

func TestRawJSONID(t *testing.T) {
	var p parser
	req, err := p.parse(`{"execute": "stop", "id": { "a" : 1 }}`)
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(req.ID))
	require.Equal(t, `{"execute": "stop", "id": {"a":1}}`, string(req.wire()))
	req, err = p.parse(`{"exec-oob": "x", "arguments": {"b": 2}}`)
	require.NoError(t, err)
	require.Nil(t, req.ID)
	require.Equal(t, `{"exec-oob": "x", "arguments": {"b": 2}}`, string(req.wire()))
}
