package qmptest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// qemu72Data is what real QEMU 7.2 (qemu-system-x86_64 -machine q35 -S
// -nodefaults -device qemu-xhci) answered, captured and checked by
// TestQEMU72Capture: its query-commands and query-qmp-schema, HMP's help,
// and every query that takes no arguments.
//
//go:embed testdata/qemu72/commands.json testdata/qemu72/schema.json testdata/qemu72/queries.json testdata/qemu72/hmp-help.txt testdata/qemu72/hmp-info.txt
var qemu72Data embed.FS

// qemu72 is the captured data, decoded.
type qemu72 struct {
	commands json.RawMessage            // query-commands' return value
	names    []string                   // the command names, in QEMU's order
	schema   json.RawMessage            // query-qmp-schema's return value
	types    map[string]schemaEntry     // schema entries by name
	queries  map[string]json.RawMessage // reply ({"return": …} or {"error": …}) by command
	hmpHelp  string                     // HMP's help, lines ending in \r\n
	hmpNames map[string]bool            // HMP command names and aliases
	hmpInfo  string                     // HMP's info without arguments
	infoName map[string]bool            // HMP info subcommands
}

// schemaEntry is one entry of query-qmp-schema, as far as argument checking
// needs it.
type schemaEntry struct {
	Name     string         `json:"name"`
	MetaType string         `json:"meta-type"`
	ArgType  string         `json:"arg-type"`
	Members  []schemaMember `json:"members"`
	Tag      string         `json:"tag"`
	Variants []struct {
		Case string `json:"case"`
		Type string `json:"type"`
	} `json:"variants"`
}

// schemaMember is a member of an object type: optional when the schema
// gives it a "default" (always null in QEMU's introspection).
type schemaMember struct {
	Name     string
	Optional bool
}

// UnmarshalJSON implements json.Unmarshaler: a null default is still one.
func (m *schemaMember) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	_, m.Optional = raw["default"]
	if n, ok := raw["name"]; ok {
		return json.Unmarshal(n, &m.Name)
	}
	return nil
}

var loadQEMU72 = sync.OnceValues(func() (*qemu72, error) {
	read := func(name string) []byte {
		b, err := qemu72Data.ReadFile("testdata/qemu72/" + name)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		return b
	}
	q := &qemu72{types: map[string]schemaEntry{}, hmpNames: map[string]bool{}, infoName: map[string]bool{}}
	q.commands = compact(read("commands.json"))
	q.schema = compact(read("schema.json"))
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(q.commands, &list); err != nil {
		return nil, fmt.Errorf("qmptest: commands.json: %w", err)
	}
	for _, c := range list {
		q.names = append(q.names, c.Name)
	}
	var entries []schemaEntry
	if err := json.Unmarshal(q.schema, &entries); err != nil {
		return nil, fmt.Errorf("qmptest: schema.json: %w", err)
	}
	for _, e := range entries {
		q.types[e.Name] = e
	}
	if err := json.Unmarshal(read("queries.json"), &q.queries); err != nil {
		return nil, fmt.Errorf("qmptest: queries.json: %w", err)
	}
	q.hmpHelp = string(read("hmp-help.txt"))
	commandNames(q.hmpHelp, "", q.hmpNames)
	q.hmpInfo = string(read("hmp-info.txt"))
	commandNames(q.hmpInfo, "info ", q.infoName)
	return q, nil
})

// commandNames adds the command names of HMP help text to names: the first
// word (after prefix) of each line not starting with blanks, split at "|".
func commandNames(help, prefix string, names map[string]bool) {
	for _, line := range strings.Split(help, "\r\n") {
		line, ok := strings.CutPrefix(line, prefix)
		if !ok || line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		word, _, _ := strings.Cut(line, " ")
		for _, n := range strings.Split(word, "|") {
			names[n] = true
		}
	}
}

func compact(b []byte) json.RawMessage {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		panic(err) // embedded and checked by the tests
	}
	return out.Bytes()
}

// checkArgs checks a command's arguments against QEMU 7.2's schema, as
// QEMU's input visitor does: a missing required member first, in schema
// order, then an unexpected one. Only member names are checked, not types.
func (q *qemu72) checkArgs(name string, args json.RawMessage) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &m); err != nil {
			return nil, Errorf("GenericError", "QMP input member 'arguments' must be an object")
		}
	}
	cmd, ok := q.types[name]
	if !ok || cmd.MetaType != "command" {
		return m, nil
	}
	known := map[string]bool{}
	var walk func(typ string) error
	walk = func(typ string) error {
		t, ok := q.types[typ]
		if !ok || t.MetaType != "object" {
			return nil // a boxed or non-object argument: not checked
		}
		for _, mem := range t.Members {
			known[mem.Name] = true
			if _, given := m[mem.Name]; !given && !mem.Optional {
				return Errorf("GenericError", "Parameter '%s' is missing", mem.Name)
			}
		}
		if t.Tag == "" {
			return nil
		}
		var tag string
		if err := json.Unmarshal(m[t.Tag], &tag); err != nil {
			return Errorf("GenericError", "Invalid parameter type for '%s', expected: string", t.Tag)
		}
		for _, v := range t.Variants {
			if v.Case == tag {
				return walk(v.Type)
			}
		}
		return Errorf("GenericError", "Parameter '%s' does not accept value '%s'", t.Tag, tag)
	}
	if err := walk(cmd.ArgType); err != nil {
		return nil, err
	}
	if t := q.types[cmd.ArgType]; t.MetaType == "object" {
		for _, k := range sortedKeys(m) {
			if !known[k] {
				return nil, Errorf("GenericError", "Parameter '%s' is unexpected", k)
			}
		}
	}
	return m, nil
}

// qemu72Model is the state behind the simulated block, QOM and device
// commands.
type qemu72Model struct {
	q       *qemu72
	mu      sync.Mutex
	nodes   map[string]*blockNode
	order   []string                              // node names in creation order
	objects map[string]map[string]json.RawMessage // object-add arguments by id
	devices map[string]string                     // driver by device id
}

type blockNode struct {
	driver  string
	args    json.RawMessage // blockdev-add's arguments
	bitmaps map[string]bool
}

// simulatedDevices are the drivers device_add accepts: devices of the USB
// bus of the simulated qemu-xhci controller.
var simulatedDevices = map[string]bool{"usb-tablet": true, "usb-kbd": true, "usb-mouse": true}

// HandleQEMU72 makes the server answer every command of QEMU 7.2's
// query-commands (qemu-system-x86_64, a q35 machine with a qemu-xhci USB
// controller), with replies and events captured from real QEMU and checked
// against it by this package's tests:
//
//   - query-commands and query-qmp-schema: QEMU's own lists;
//   - arguments are checked against that schema, in QEMU's words
//     ("Parameter 'driver' is missing", "… is unexpected");
//   - every query that takes no arguments (query-kvm, query-cpus-fast,
//     query-machines, query-chardev, …): QEMU's reply;
//   - blockdev-add, blockdev-del, query-named-block-nodes, query-block,
//     block-dirty-bitmap-add and -remove, and transaction of those and
//     abort: kept in the server's state;
//   - object-add, object-del, and qom-get of an added object's properties;
//   - device_add of usb-tablet, usb-kbd or usb-mouse and device_del, which
//     sends DEVICE_DELETED after its reply, as QEMU does;
//   - system_reset (RESET) besides the default set (NewServer);
//   - human-monitor-command: help and info are QEMU's, and the other
//     commands QEMU has but the server does not model say so.
//
// Any other command of QEMU's list answers a GenericError saying the
// simulator does not model it, never CommandNotFound. Handlers registered
// later with Handle replace these.
func (s *Server) HandleQEMU72() {
	q, err := loadQEMU72()
	if err != nil {
		panic(err) // embedded data, checked by the tests
	}
	m := &qemu72Model{q: q, nodes: map[string]*blockNode{}, objects: map[string]map[string]json.RawMessage{}, devices: map[string]string{}}
	checked := func(name string, h func(ctx context.Context, p map[string]json.RawMessage) (any, error)) HandlerFunc {
		return func(ctx context.Context, args json.RawMessage) (any, error) {
			p, err := q.checkArgs(name, args)
			if err != nil {
				return nil, err
			}
			return h(ctx, p)
		}
	}
	defaults := map[string]bool{}
	for _, n := range s.Commands() {
		defaults[n] = true
	}
	for _, name := range q.names {
		name := name
		switch {
		case q.queries[name] != nil:
			reply := q.queries[name]
			s.Handle(name, checked(name, func(context.Context, map[string]json.RawMessage) (any, error) {
				var r struct {
					Return json.RawMessage `json:"return"`
					Error  *Error          `json:"error"`
				}
				if err := json.Unmarshal(reply, &r); err != nil {
					return nil, err
				}
				if r.Error != nil {
					return nil, &Error{Class: r.Error.Class, Desc: r.Error.Desc}
				}
				return r.Return, nil
			}))
		case defaults[name] && name != "human-monitor-command":
			// QEMU's own behaviour already (query-status, stop, cont, …).
		default:
			s.Handle(name, checked(name, func(context.Context, map[string]json.RawMessage) (any, error) {
				return nil, Errorf("GenericError", "qmptest: the QEMU 7.2 simulator does not model %s", name)
			}))
		}
	}
	s.Handle("query-commands", noArgs(func(context.Context) (any, error) { return m.queryCommands(s), nil }))
	s.Handle("query-qmp-schema", noArgs(func(context.Context) (any, error) { return q.schema, nil }))
	s.Handle("system_reset", noArgs(func(ctx context.Context) (any, error) {
		return nil, Emit(ctx, "RESET", json.RawMessage(`{"guest": false, "reason": "host-qmp-system-reset"}`))
	}))
	s.Handle("query-block", noArgs(func(context.Context) (any, error) { return json.RawMessage("[]"), nil }))
	s.Handle("query-named-block-nodes", checked("query-named-block-nodes", m.namedBlockNodes))
	s.Handle("blockdev-add", checked("blockdev-add", m.blockdevAdd))
	s.Handle("blockdev-del", checked("blockdev-del", m.blockdevDel))
	s.Handle("block-dirty-bitmap-add", checked("block-dirty-bitmap-add", func(_ context.Context, p map[string]json.RawMessage) (any, error) {
		return nil, m.bitmap(p, true)
	}))
	s.Handle("block-dirty-bitmap-remove", checked("block-dirty-bitmap-remove", func(_ context.Context, p map[string]json.RawMessage) (any, error) {
		return nil, m.bitmap(p, false)
	}))
	s.Handle("transaction", checked("transaction", m.transaction))
	s.Handle("object-add", checked("object-add", m.objectAdd))
	s.Handle("object-del", checked("object-del", m.objectDel))
	s.Handle("qom-get", checked("qom-get", m.qomGet))
	s.Handle("device_add", m.deviceAdd) // its arguments are the device's properties: not in the schema
	s.Handle("device_del", checked("device_del", m.deviceDel))
	s.Handle("human-monitor-command", func(ctx context.Context, args json.RawMessage) (any, error) {
		p, err := params(args, []string{"command-line"}, []string{"cpu-index"})
		if err != nil {
			return nil, err
		}
		line, _, err := stringParam(p, "command-line")
		if err != nil {
			return nil, err
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			return "", nil
		case fields[0] == "help" || fields[0] == "?":
			return q.hmpHelp, nil
		case fields[0] == "info" && len(fields) == 1:
			return q.hmpInfo, nil
		case fields[0] == "info" && !infoModelled[fields[1]] && q.infoName[fields[1]]:
			return "qmptest: the QEMU 7.2 simulator does not model the HMP command info " + fields[1] + "\r\n", nil
		case !hmpModelled[fields[0]] && q.hmpNames[fields[0]]:
			return "qmptest: the QEMU 7.2 simulator does not model the HMP command " + fields[0] + "\r\n", nil
		}
		return s.hmp(ctx, args)
	})
}

// infoModelled are the info subcommands Server.hmp answers.
var infoModelled = map[string]bool{"status": true, "version": true, "name": true}

// hmpModelled are the HMP commands Server.hmp answers.
var hmpModelled = map[string]bool{"info": true, "stop": true, "s": true, "cont": true, "c": true,
	"system_powerdown": true, "quit": true, "q": true}

// queryCommands lists QEMU's commands in QEMU's order, then any other
// command registered on s.
func (m *qemu72Model) queryCommands(s *Server) json.RawMessage {
	listed := map[string]bool{}
	for _, n := range m.q.names {
		listed[n] = true
	}
	var extra []string
	for _, n := range s.Commands() {
		if !listed[n] {
			extra = append(extra, n)
		}
	}
	if len(extra) == 0 {
		return m.q.commands
	}
	b := append([]byte{}, m.q.commands[:len(m.q.commands)-1]...)
	for _, n := range extra {
		b = append(b, `,{"name":`...)
		b = append(b, jsonString(n)...)
		b = append(b, '}')
	}
	return append(b, ']')
}

func (m *qemu72Model) blockdevAdd(_ context.Context, p map[string]json.RawMessage) (any, error) {
	driver, _, err := stringParam(p, "driver")
	if err != nil {
		return nil, err
	}
	name, ok, err := stringParam(p, "node-name")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf("GenericError", "qmptest: the QEMU 7.2 simulator needs a node-name for blockdev-add")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes[name] != nil {
		return nil, Errorf("GenericError", "Duplicate nodes with node-name='%s'", name)
	}
	rest := map[string]json.RawMessage{}
	for k, v := range p {
		if k != "node-name" {
			rest[k] = v
		}
	}
	args, _ := json.Marshal(rest)
	m.nodes[name] = &blockNode{driver: driver, args: args, bitmaps: map[string]bool{}}
	m.order = append(m.order, name)
	return nil, nil
}

func (m *qemu72Model) blockdevDel(_ context.Context, p map[string]json.RawMessage) (any, error) {
	name, _, err := stringParam(p, "node-name")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes[name] == nil {
		return nil, Errorf("GenericError", "Failed to find node with node-name='%s'", name)
	}
	delete(m.nodes, name)
	for i, n := range m.order {
		if n == name {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	return nil, nil
}

// namedBlockNodes answers query-named-block-nodes in the shape QEMU gives
// for a null-co node (the driver's name and arguments filled in).
func (m *qemu72Model) namedBlockNodes(context.Context, map[string]json.RawMessage) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b bytes.Buffer
	b.WriteByte('[')
	for i, name := range m.order {
		n := m.nodes[name]
		if i > 0 {
			b.WriteString(", ")
		}
		file := jsonString("json:" + qemuJSON(n.args))
		fmt.Fprintf(&b, `{"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 1073741824, "filename": %s, "format": %s, "actual-size": 0}, `+
			`"iops_wr": 0, "ro": false, "node-name": %s, "backing_file_depth": 0, "drv": %s, "iops": 0, "bps_wr": 0, "write_threshold": 0, `+
			`"encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": %s}`,
			file, jsonString(n.driver), jsonString(name), jsonString(n.driver), file)
	}
	b.WriteByte(']')
	return json.RawMessage(b.Bytes()), nil
}

// qemuJSON writes an object as QEMU writes a json: filename: ", " and ": "
// between items, the driver last.
func qemuJSON(obj json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return string(obj)
	}
	var b strings.Builder
	b.WriteByte('{')
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return keys[j] == "driver" && keys[i] != "driver" })
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(jsonString(k))
		b.WriteString(": ")
		var c bytes.Buffer
		if json.Compact(&c, m[k]) == nil {
			b.Write(c.Bytes())
		}
	}
	b.WriteByte('}')
	return b.String()
}

// bitmap adds or removes a dirty bitmap.
func (m *qemu72Model) bitmap(p map[string]json.RawMessage, add bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bitmapLocked(p, add, nil)
}

// bitmapLocked checks, and unless into is non-nil applies, a bitmap change;
// into collects the changes a transaction applies at its end.
func (m *qemu72Model) bitmapLocked(p map[string]json.RawMessage, add bool, into *[]func()) error {
	node, _, err := stringParam(p, "node")
	if err != nil {
		return err
	}
	name, _, err := stringParam(p, "name")
	if err != nil {
		return err
	}
	n := m.nodes[node]
	if n == nil {
		return Errorf("GenericError", "Cannot find device='%s' nor node-name='%s'", node, node)
	}
	switch {
	case add && n.bitmaps[name]:
		return Errorf("GenericError", "Bitmap already exists: %s", name)
	case !add && !n.bitmaps[name]:
		return Errorf("GenericError", "Dirty bitmap '%s' not found", name)
	}
	apply := func() {
		if add {
			n.bitmaps[name] = true
		} else {
			delete(n.bitmaps, name)
		}
	}
	if into == nil {
		apply()
	} else {
		*into = append(*into, apply)
	}
	return nil
}

// transaction runs block-dirty-bitmap-add, block-dirty-bitmap-remove and
// abort actions: all or none.
func (m *qemu72Model) transaction(_ context.Context, p map[string]json.RawMessage) (any, error) {
	var actions []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(p["actions"], &actions); err != nil {
		return nil, Errorf("GenericError", "Invalid parameter type for 'actions', expected: array")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var apply []func()
	for _, a := range actions {
		var err error
		switch a.Type {
		case "abort":
			err = Errorf("GenericError", "Transaction aborted using Abort action")
		case "block-dirty-bitmap-add", "block-dirty-bitmap-remove":
			var data map[string]json.RawMessage
			data, err = m.q.checkArgs(a.Type, a.Data)
			if err == nil {
				err = m.bitmapLocked(data, a.Type == "block-dirty-bitmap-add", &apply)
			}
		default:
			err = Errorf("GenericError", "qmptest: the QEMU 7.2 simulator does not model the transaction action %s", a.Type)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, f := range apply {
		f()
	}
	return nil, nil
}

func (m *qemu72Model) objectAdd(_ context.Context, p map[string]json.RawMessage) (any, error) {
	id, _, err := stringParam(p, "id")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects[id] != nil {
		return nil, Errorf("GenericError", "attempt to add duplicate property '%s' to object (type 'container')", id)
	}
	m.objects[id] = p
	return nil, nil
}

func (m *qemu72Model) objectDel(_ context.Context, p map[string]json.RawMessage) (any, error) {
	id, _, err := stringParam(p, "id")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects[id] == nil {
		return nil, Errorf("GenericError", "object '%s' not found", id)
	}
	delete(m.objects, id)
	return nil, nil
}

// qomGet reads a property of an object added with object-add: the value it
// was given.
func (m *qemu72Model) qomGet(_ context.Context, p map[string]json.RawMessage) (any, error) {
	path, _, err := stringParam(p, "path")
	if err != nil {
		return nil, err
	}
	prop, _, err := stringParam(p, "property")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := strings.CutPrefix(path, "/objects/")
	obj := m.objects[id]
	if !ok || obj == nil {
		return nil, Errorf("DeviceNotFound", "Device '%s' not found", path)
	}
	v, ok := obj[prop]
	if !ok {
		var typ string
		_ = json.Unmarshal(obj["qom-type"], &typ)
		return nil, Errorf("GenericError", "Property '%s.%s' not found", typ, prop)
	}
	return v, nil
}

func (m *qemu72Model) deviceAdd(_ context.Context, args json.RawMessage) (any, error) {
	p := map[string]json.RawMessage{}
	if len(args) > 0 && json.Unmarshal(args, &p) != nil {
		return nil, Errorf("GenericError", "QMP input member 'arguments' must be an object")
	}
	if _, ok := p["driver"]; !ok {
		return nil, Errorf("GenericError", "Parameter 'driver' is missing")
	}
	driver, _, err := stringParam(p, "driver")
	if err != nil {
		return nil, err
	}
	id, _, err := stringParam(p, "id")
	if err != nil {
		return nil, err
	}
	if !simulatedDevices[driver] {
		return nil, Errorf("GenericError", "qmptest: the QEMU 7.2 simulator's device_add knows usb-kbd, usb-mouse and usb-tablet, not %s", driver)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != "" {
		if _, dup := m.devices[id]; dup {
			return nil, Errorf("GenericError", "Duplicate device ID '%s'", id)
		}
		m.devices[id] = driver
	}
	return nil, nil
}

// deviceDel unplugs at once, as a USB device is: DEVICE_DELETED follows the
// reply.
func (m *qemu72Model) deviceDel(ctx context.Context, p map[string]json.RawMessage) (any, error) {
	id, _, err := stringParam(p, "id")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	_, ok := m.devices[id]
	delete(m.devices, id)
	m.mu.Unlock()
	if !ok {
		return nil, Errorf("DeviceNotFound", "Device '%s' not found", id)
	}
	return nil, EmitAfter(ctx, "DEVICE_DELETED", map[string]string{"device": id, "path": "/machine/peripheral/" + id})
}
