package main

import (
	"encoding/json"
	"sort"
	"strings"
)

// schema is what completion needs of query-qmp-schema: command argument
// types, object members (with flat-union variants), enum values.
type schema struct {
	commands map[string]string // command name → its arg-type
	types    map[string]*schemaType
}

type schemaType struct {
	Name        string         `json:"name"`
	MetaType    string         `json:"meta-type"`
	ArgType     string         `json:"arg-type"`
	Members     []schemaMember `json:"members"`
	Tag         string         `json:"tag"`
	Variants    []struct{ Case, Type string }
	Values      []string `json:"values"`
	ElementType string   `json:"element-type"`
	JSONType    string   `json:"json-type"`
}

type schemaMember struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// parseSchema reads query-qmp-schema's return value.
func parseSchema(raw json.RawMessage) (*schema, error) {
	var entries []*schemaType
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, err
	}
	s := &schema{commands: map[string]string{}, types: map[string]*schemaType{}}
	for _, e := range entries {
		if e.MetaType == "command" {
			s.commands[e.Name] = e.ArgType
		}
		s.types[e.Name] = e
	}
	return s, nil
}

// object returns the object type behind name: itself, or the object branch
// of an alternate (BlockdevRef is an object or a node name).
func (s *schema) object(name string) *schemaType {
	t := s.types[name]
	if t == nil {
		return nil
	}
	if t.MetaType == "alternate" {
		for _, m := range t.Members {
			if o := s.types[m.Type]; o != nil && o.MetaType == "object" {
				return o
			}
		}
		return nil
	}
	if t.MetaType != "object" {
		return nil
	}
	return t
}

// members lists the members of object type t at dotted path prefix, with
// the members of the variant chosen by a tag value already on the line.
func (s *schema) members(t *schemaType, path string, typed map[string]string) []schemaMember {
	if t == nil {
		return nil
	}
	out := append([]schemaMember{}, t.Members...)
	if t.Tag != "" {
		tag := typed[path+t.Tag]
		for _, v := range t.Variants {
			if v.Case == tag {
				out = append(out, s.members(s.object(v.Type), path, typed)...)
			}
		}
	}
	return out
}

// resolve walks a dotted key from the object type root and returns the type
// of its last part.
func (s *schema) resolve(root *schemaType, key string, typed map[string]string) *schemaType {
	t := root
	path := ""
	parts := strings.Split(key, ".")
	for i, part := range parts {
		var next *schemaType
		for _, m := range s.members(t, path, typed) {
			if m.Name == part {
				next = s.types[m.Type]
			}
		}
		if next == nil {
			return nil
		}
		if i == len(parts)-1 {
			return next
		}
		t = s.object(next.Name)
		path += part + "."
	}
	return nil
}

// keys returns the completions of a key being typed: full dotted names,
// each followed by "=" or, for an object, ".".
func (s *schema) keys(root *schemaType, word string, typed map[string]string) []string {
	t, path := root, ""
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		path = word[:i+1]
		next := s.resolve(root, word[:i], typed)
		if next == nil {
			return nil
		}
		t = s.object(next.Name)
	}
	var out []string
	for _, m := range s.members(t, path, typed) {
		if _, done := typed[path+m.Name]; done {
			continue
		}
		suffix := "="
		if o := s.object(m.Type); o != nil && s.types[m.Type].MetaType == "object" {
			suffix = "."
		}
		out = append(out, path+m.Name+suffix)
	}
	return out
}

// values returns the values a key takes, for enums and booleans.
func (s *schema) values(root *schemaType, key string, typed map[string]string) []string {
	t := s.resolve(root, key, typed)
	if t == nil {
		return nil
	}
	if t.MetaType == "alternate" {
		var out []string
		for _, m := range t.Members {
			if e := s.types[m.Type]; e != nil && e.MetaType == "enum" {
				out = append(out, e.Values...)
			}
		}
		return out
	}
	switch {
	case t.MetaType == "enum":
		return append([]string{}, t.Values...)
	case t.JSONType == "boolean":
		return []string{"false", "true"}
	}
	return nil
}

// argsRoot returns the object type of a command's arguments.
func (s *schema) argsRoot(cmd string) *schemaType {
	arg, ok := s.commands[cmd]
	if !ok {
		return nil
	}
	return s.object(arg)
}

// actionRoot returns the type of a transaction action's data, and the
// action type names when action is "".
func (s *schema) actionTypes() (names []string, data map[string]*schemaType) {
	data = map[string]*schemaType{}
	root := s.argsRoot("transaction")
	if root == nil {
		return nil, data
	}
	actions := s.resolve(root, "actions", nil)
	if actions == nil || actions.ElementType == "" {
		return nil, data
	}
	union := s.object(actions.ElementType)
	if union == nil {
		return nil, data
	}
	for _, v := range union.Variants {
		names = append(names, v.Case)
		if wrapper := s.object(v.Type); wrapper != nil {
			for _, m := range wrapper.Members {
				if m.Name == "data" {
					data[v.Case] = s.object(m.Type)
				}
			}
		}
	}
	return names, data
}

// typedArgs collects the key=value words already on a line.
func typedArgs(words []string) map[string]string {
	typed := map[string]string{}
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok {
			typed[k] = strings.Trim(v, `"'`)
		}
	}
	return typed
}

// completer completes the word before the cursor. It remembers the last
// Tab so that a second Tab on an ambiguous word lists the candidates, as
// readline does.
type completer struct {
	commands []string // command names (HMP commands with -H), sorted
	info     []string // HMP info subcommands, sorted
	schema   *schema  // nil when the server gave none
	hmp      bool

	lastTab string // the line after the last Tab, "" after any other key
}

// candidates returns the possible completions of the last word of line,
// and where that word starts.
func (c *completer) candidates(line string, inTransaction bool) ([]string, int) {
	start := strings.LastIndexAny(line, " \t") + 1
	words, err := splitWords(line[:start])
	if err != nil {
		return nil, start
	}
	word := line[start:]
	if c.hmp {
		switch {
		case len(words) == 0:
			return c.commands, start
		case len(words) == 1 && words[0] == "info":
			return c.info, start
		}
		return nil, start
	}
	var root *schemaType
	if inTransaction {
		if len(words) > 0 && words[0] == "transaction(" {
			words = words[1:]
		}
		if c.schema == nil {
			return nil, start
		}
		names, data := c.schema.actionTypes()
		if len(words) == 0 {
			return names, start
		}
		root = data[words[0]]
	} else {
		if len(words) == 0 {
			return c.commands, start
		}
		if c.schema == nil {
			return nil, start
		}
		root = c.schema.argsRoot(words[0])
	}
	if root == nil {
		return nil, start
	}
	typed := typedArgs(words[1:])
	if key, val, ok := strings.Cut(word, "="); ok {
		var out []string
		for _, v := range c.schema.values(root, key, typed) {
			out = append(out, key+"="+v)
		}
		_ = val
		return out, start
	}
	return c.schema.keys(root, word, typed), start
}

// complete is the line editor's key callback for Tab. It returns the new
// line, or list (with ok false) when the candidates should be shown.
func (c *completer) complete(line string, pos int, inTransaction bool) (newLine string, list []string, ok bool) {
	if pos != len(line) {
		c.lastTab = ""
		return "", nil, false
	}
	cands, start := c.candidates(line, inTransaction)
	word := line[start:]
	var matches []string
	for _, n := range cands {
		if strings.HasPrefix(n, word) {
			matches = append(matches, n)
		}
	}
	sort.Strings(matches)
	if len(matches) == 0 {
		c.lastTab = ""
		return "", nil, false
	}
	common := matches[0]
	for _, m := range matches[1:] {
		for !strings.HasPrefix(m, common) {
			common = common[:len(common)-1]
		}
	}
	if len(matches) == 1 && !strings.HasSuffix(common, "=") && !strings.HasSuffix(common, ".") {
		common += " "
	}
	if common == word {
		if len(matches) > 1 && c.lastTab == line {
			return "", matches, false
		}
		c.lastTab = line
		return "", nil, false
	}
	nl := line[:start] + common
	c.lastTab = nl
	return nl, nil, true
}

// columns lays names out in columns across width, as readline lists
// completions.
func columns(names []string, width int) string {
	w := 0
	for _, n := range names {
		w = max(w, len(n))
	}
	w += 2
	per := max(1, width/w)
	rows := (len(names) + per - 1) / per
	var b strings.Builder
	for r := 0; r < rows; r++ {
		for c := 0; c < per; c++ {
			i := c*rows + r
			if i >= len(names) {
				break
			}
			b.WriteString(names[i])
			if c < per-1 && (c+1)*rows+r < len(names) {
				b.WriteString(strings.Repeat(" ", w-len(names[i])))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
