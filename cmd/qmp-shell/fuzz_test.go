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

// FuzzComplete presses Tab (twice) at the end of arbitrary lines, with QEMU
// 7.2's schema: no panic, and a completion only ever extends the line.
func FuzzComplete(f *testing.F) {
	for _, s := range []string{
		"query-", "blockdev-add driver=null-co read-z", "blockdev-add driver=raw file.file.dri",
		"transaction( block-dirty-bitmap-add no", `x a={"b c`, "object-add qom-type=", "a.b.c.d.=",
	} {
		f.Add(s, false)
	}
	c, err := loadQEMUCompleter()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string, inTransaction bool) {
		c.lastTab = ""
		for range 2 {
			nl, _, ok := c.complete(line, len(line), inTransaction)
			if ok && (!strings.HasPrefix(nl, line) || len(nl) <= len(line)) {
				t.Fatalf("Tab on %q gave %q", line, nl)
			}
		}
	})
}
