package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// request is one command the shell sends.
type request struct {
	Name string
	Args json.RawMessage // a JSON object, nil for none
	OOB  bool            // exec-oob instead of execute
	// ID is the "id" of a raw JSON command, nil when it had none. The
	// client numbers the commands it sends itself (so that no reply is
	// taken for another's); the shell shows the reply with this id.
	ID json.RawMessage
}

// wire returns the command as the user wrote it: execute (or exec-oob),
// arguments, id.
func (r *request) wire() []byte {
	verb := "execute"
	if r.OOB {
		verb = "exec-oob"
	}
	b := []byte(`{"` + verb + `": `)
	name, _ := json.Marshal(r.Name)
	b = append(b, name...)
	if r.Args != nil {
		b = append(b, `, "arguments": `...)
		b = append(b, r.Args...)
	}
	if r.ID != nil {
		b = append(b, `, "id": `...)
		b = append(b, r.ID...)
	}
	return append(b, '}')
}

// parser turns qmp-shell input lines into requests. It carries the state of
// transaction mode across lines, so it is not a pure function of one line.
type parser struct {
	inTransaction bool
	actions       []json.RawMessage
}

// errSyntax is wrapped by every parse error.
var errSyntax = errors.New("syntax error")

func syntaxError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSyntax, fmt.Sprintf(format, args...))
}

// prompt returns the prompt matching the parser's mode.
func (p *parser) prompt() string {
	if p.inTransaction {
		return "TRANS> "
	}
	return "(QEMU) "
}

// parse reads one line. It returns nil (and no error) for a line that sends
// nothing: an empty line, a comment, or an action inside transaction(…).
//
// Accepted forms, as qemu.qmp's qmp-shell:
//
//	query-status
//	blockdev-add driver=null-co node-name=disk0 read-zeroes=true
//	object-add qom-type=memory-backend-ram id=m size=1048576 x={"a":[1,2]}
//	block.file.filename=/tmp/x   (dotted keys build nested objects)
//	{"execute": "query-status"}  (raw JSON, sent as it is)
//	transaction( … ) over one or several lines
func (p *parser) parse(line string) (*request, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return nil, nil
	}
	if strings.HasPrefix(line, "{") && !p.inTransaction {
		return parseRawJSON(line)
	}
	words, err := splitWords(line)
	if err != nil {
		return nil, err
	}
	if len(words) > 0 && words[0] == "transaction(" {
		if p.inTransaction {
			return nil, syntaxError("transaction( inside a transaction")
		}
		p.inTransaction = true
		p.actions = p.actions[:0]
		words = words[1:]
	} else if strings.HasPrefix(words[0], "transaction(") && !p.inTransaction {
		return nil, syntaxError("write a space after transaction(")
	}
	if !p.inTransaction {
		if words[0] == ")" {
			return nil, syntaxError(") outside a transaction")
		}
		args, err := buildArgs(words[1:])
		if err != nil {
			return nil, err
		}
		return &request{Name: words[0], Args: args}, nil
	}
	closing := false
	if n := len(words); n > 0 && words[n-1] == ")" {
		closing = true
		words = words[:n-1]
	}
	if len(words) > 0 {
		if words[0] == ")" {
			return nil, syntaxError("unexpected input after ) closing the transaction")
		}
		data, err := buildArgs(words[1:])
		if err != nil {
			return nil, err
		}
		if data == nil {
			data = json.RawMessage("{}")
		}
		action, err := json.Marshal(struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}{words[0], data})
		if err != nil {
			return nil, err
		}
		p.actions = append(p.actions, action)
	}
	if !closing {
		return nil, nil
	}
	p.inTransaction = false
	args, err := json.Marshal(map[string][]json.RawMessage{"actions": append([]json.RawMessage{}, p.actions...)})
	if err != nil {
		return nil, err
	}
	p.actions = p.actions[:0]
	return &request{Name: "transaction", Args: args}, nil
}

// parseRawJSON reads {"execute": NAME, "arguments": {…}, "id": ID} or the
// exec-oob form. The id is kept for the reply the shell prints.
func parseRawJSON(line string) (*request, error) {
	var msg struct {
		Execute   *string         `json:"execute"`
		ExecOOB   *string         `json:"exec-oob"`
		Arguments json.RawMessage `json:"arguments"`
		ID        json.RawMessage `json:"id"`
	}
	dec := json.NewDecoder(strings.NewReader(line))
	if err := dec.Decode(&msg); err != nil {
		return nil, syntaxError("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, syntaxError("text after the JSON object")
	}
	r := &request{Args: msg.Arguments}
	if len(msg.ID) > 0 && !bytes.Equal(msg.ID, []byte("null")) {
		var c bytes.Buffer
		_ = json.Compact(&c, msg.ID) // valid: it was decoded
		r.ID = c.Bytes()
	}
	switch {
	case msg.Execute != nil && msg.ExecOOB != nil:
		return nil, syntaxError(`a command has "execute" or "exec-oob", not both`)
	case msg.Execute != nil:
		r.Name = *msg.Execute
	case msg.ExecOOB != nil:
		r.Name, r.OOB = *msg.ExecOOB, true
	default:
		return nil, syntaxError(`a JSON command needs "execute" or "exec-oob"`)
	}
	if len(r.Args) > 0 && (bytes.Equal(r.Args, []byte("null")) || r.Args[0] != '{') {
		return nil, syntaxError(`"arguments" must be an object`)
	}
	return r, nil
}

// splitWords splits a line at white space that is outside quotes and
// outside brackets, so x={"a": 1, "b": "c d"} stays one word. Quotes are
// kept: the value parser needs them to tell "1" from 1.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote byte // the open quote, 0 for none
	depth := 0
	escaped := false
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == quote:
				quote = 0
			}
			continue
		case c == ' ' || c == '\t':
			if depth == 0 {
				if inWord {
					words = append(words, cur.String())
					cur.Reset()
					inWord = false
				}
				continue
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return nil, syntaxError("unbalanced %q at column %d", c, i+1)
			}
			depth--
		}
		inWord = true
		cur.WriteByte(c)
	}
	if quote != 0 {
		return nil, syntaxError("unterminated %c quote", quote)
	}
	if depth != 0 {
		return nil, syntaxError("unclosed { or [")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseValue turns the text after key= into a JSON value: integers,
// numbers, true/false/null, "strings", objects and arrays are JSON;
// 'single-quoted' text is a string without its quotes; anything else (a
// plain word like a path or a node name) is a string.
func parseValue(s string) (json.RawMessage, error) {
	if n := len(s); n >= 2 && s[0] == '\'' && s[n-1] == '\'' {
		return json.Marshal(s[1 : n-1])
	}
	switch strings.ToLower(s) {
	case "true":
		return json.RawMessage("true"), nil
	case "false":
		return json.RawMessage("false"), nil
	}
	if s != "" && json.Valid([]byte(s)) {
		return json.RawMessage(s), nil
	}
	if s != "" && (s[0] == '{' || s[0] == '[' || s[0] == '"') {
		var v any
		err := json.Unmarshal([]byte(s), &v)
		return nil, syntaxError("value %s is not valid JSON: %v", s, err)
	}
	return json.Marshal(s)
}

// buildArgs turns key=value words into a JSON object, nil when there are
// none. A dotted key (a.b.c=1) builds nested objects.
func buildArgs(words []string) (json.RawMessage, error) {
	if len(words) == 0 {
		return nil, nil
	}
	root := map[string]any{}
	for _, w := range words {
		key, val, ok := strings.Cut(w, "=")
		if !ok || key == "" {
			return nil, syntaxError("expected key=value, got %q", w)
		}
		v, err := parseValue(val)
		if err != nil {
			return nil, err
		}
		parts := strings.Split(key, ".")
		obj := root
		for i, part := range parts {
			if part == "" {
				return nil, syntaxError("empty name in key %q", key)
			}
			last := i == len(parts)-1
			existing, exists := obj[part]
			if last {
				if exists {
					return nil, syntaxError("key %q given twice", strings.Join(parts[:i+1], "."))
				}
				obj[part] = v
				break
			}
			if !exists {
				child := map[string]any{}
				obj[part] = child
				obj = child
				continue
			}
			child, isObj := existing.(map[string]any)
			if !isObj {
				return nil, syntaxError("key %q is both a value and an object", strings.Join(parts[:i+1], "."))
			}
			obj = child
		}
	}
	return json.Marshal(root)
}
