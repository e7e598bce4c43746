package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParse feeds lines to the parser: it never panics, and every request
// it builds has a name and arguments that are a JSON object.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"query-status",
		`blockdev-add driver=qcow2 file.driver=file file.filename=/x a={"b":[1,2]} c='x y' d="e"`,
		`{"execute": "stop", "arguments": {"a": 1}}`,
		"transaction(\nabort\nblock-dirty-bitmap-add node=n name=b )",
		"cmd a.b=1 a.c.d=true",
		`cmd x=[{"y": "]"}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var p parser
		for _, line := range strings.Split(input, "\n") {
			req, err := p.parse(line)
			if err != nil || req == nil {
				continue
			}
			if req.Name == "" && !strings.HasPrefix(strings.TrimSpace(line), "{") {
				t.Fatalf("line %q: request without a name", line)
			}
			if req.Args != nil {
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(req.Args, &obj); err != nil {
					t.Fatalf("line %q: arguments %s are not a JSON object: %v", line, req.Args, err)
				}
			}
		}
	})
}
