package qmptest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// registerDefaults installs QEMU's behaviour for the default command set.
func (s *Server) registerDefaults() {
	for name, h := range map[string]HandlerFunc{
		"query-status":          s.queryStatus,
		"stop":                  noArgs(func(ctx context.Context) (any, error) { s.stop(ctx); return nil, nil }),
		"cont":                  noArgs(func(ctx context.Context) (any, error) { s.cont(ctx); return nil, nil }),
		"query-version":         noArgs(s.queryVersion),
		"query-name":            s.queryName,
		"query-commands":        s.queryCommands,
		"quit":                  noArgs(quit),
		"system_powerdown":      noArgs(powerdown),
		"human-monitor-command": s.hmp,
		"query-qmp-schema":      s.querySchema,
		"getfd":                 s.getfd,
		"closefd":               s.closefd,
		"add-fd":                s.addfd,
		"query-fdsets":          s.queryFDSets,
	} {
		s.handlers[name] = h
	}
}

// noArgs wraps a handler of a command that takes no arguments, refusing any
// as QEMU does.
func noArgs(f func(ctx context.Context) (any, error)) HandlerFunc {
	return func(ctx context.Context, args json.RawMessage) (any, error) {
		if _, err := params(args, nil, nil); err != nil {
			return nil, err
		}
		return f(ctx)
	}
}

// params decodes an arguments object whose members must be among required
// and optional, in QEMU's words when they are not.
func params(args json.RawMessage, required, optional []string) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &m); err != nil {
			return nil, Errorf("GenericError", "QMP input member 'arguments' must be an object")
		}
	}
	known := func(k string) bool {
		for _, n := range required {
			if n == k {
				return true
			}
		}
		for _, n := range optional {
			if n == k {
				return true
			}
		}
		return false
	}
	// QEMU reports the first unexpected member in the client's order;
	// encoding/json forgets the order, so walk the keys sorted for a
	// stable answer.
	for _, k := range sortedKeys(m) {
		if !known(k) {
			return nil, Errorf("GenericError", "Parameter '%s' is unexpected", k)
		}
	}
	for _, n := range required {
		if _, ok := m[n]; !ok {
			return nil, Errorf("GenericError", "Parameter '%s' is missing", n)
		}
	}
	return m, nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// stringParam decodes member name of p as a string.
func stringParam(p map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := p[name]
	if !ok {
		return "", false, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, Errorf("GenericError", "Invalid parameter type for '%s', expected: string", name)
	}
	return v, true, nil
}

// intParam decodes member name of p as an integer.
func intParam(p map[string]json.RawMessage, name string) (int, bool, error) {
	raw, ok := p[name]
	if !ok {
		return 0, false, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, Errorf("GenericError", "Invalid parameter type for '%s', expected: integer", name)
	}
	return v, true, nil
}

func (s *Server) queryStatus(ctx context.Context, args json.RawMessage) (any, error) {
	if _, err := params(args, nil, nil); err != nil {
		return nil, err
	}
	st := s.Status()
	// Spelled as QEMU writes it.
	return json.RawMessage(`{"status": ` + jsonString(st) + `, "singlestep": false, "running": ` +
		strconv.FormatBool(st == "running") + `}`), nil
}

// stop pauses a running VM with a STOP event before the reply; stopping a
// stopped VM does nothing, as in QEMU.
func (s *Server) stop(ctx context.Context) {
	s.mu.Lock()
	was := s.status
	if was == "running" {
		s.status = "paused"
	}
	s.mu.Unlock()
	if was == "running" {
		_ = Emit(ctx, "STOP", nil)
	}
}

// cont resumes the VM with a RESUME event before the reply.
func (s *Server) cont(ctx context.Context) {
	s.mu.Lock()
	was := s.status
	s.status = "running"
	s.mu.Unlock()
	if was != "running" {
		_ = Emit(ctx, "RESUME", nil)
	}
}

func (s *Server) queryVersion(context.Context) (any, error) {
	v := s.cfg.Version
	return json.RawMessage(fmt.Sprintf(`{"qemu": {"micro": %d, "minor": %d, "major": %d}, "package": %s}`,
		v.QEMU.Micro, v.QEMU.Minor, v.QEMU.Major, jsonString(v.Package))), nil
}

func (s *Server) queryName(ctx context.Context, args json.RawMessage) (any, error) {
	if _, err := params(args, nil, nil); err != nil {
		return nil, err
	}
	if s.cfg.Name == "" {
		return nil, nil
	}
	return json.RawMessage(`{"name": ` + jsonString(s.cfg.Name) + `}`), nil
}

func (s *Server) queryCommands(ctx context.Context, args json.RawMessage) (any, error) {
	if _, err := params(args, nil, nil); err != nil {
		return nil, err
	}
	type info struct {
		Name string `json:"name"`
	}
	names := append(s.Commands(), "qmp_capabilities")
	list := make([]info, len(names))
	for i, n := range names {
		list[i] = info{Name: n}
	}
	return list, nil
}

// quit: the SHUTDOWN event, the reply, then the connection closes.
func quit(ctx context.Context) (any, error) {
	_ = Emit(ctx, "SHUTDOWN", json.RawMessage(`{"guest": false, "reason": "host-qmp-quit"}`))
	return nil, CloseAfterReply(ctx)
}

// powerdown: QEMU 7.2 sends POWERDOWN before the reply.
func powerdown(ctx context.Context) (any, error) {
	return nil, Emit(ctx, "POWERDOWN", nil)
}

var hmpHelp = []string{
	"cont|c  -- resume emulation",
	"help|? [cmd] -- show the help",
	"info [subcommand] -- show various information about the system state",
	"quit|q  -- quit the emulator",
	"stop|s  -- stop emulation",
	"system_powerdown  -- send system power down event",
}

// hmp runs a few human monitor commands, answering as QEMU 7.2 does.
func (s *Server) hmp(ctx context.Context, args json.RawMessage) (any, error) {
	p, err := params(args, []string{"command-line"}, []string{"cpu-index"})
	if err != nil {
		return nil, err
	}
	line, _, err := stringParam(p, "command-line")
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", nil
	}
	switch fields[0] {
	case "info":
		if len(fields) < 2 {
			return "info version  -- show the version of QEMU\r\ninfo status  -- show the current VM status (running|paused)\r\ninfo name  -- show the current VM name\r\n", nil
		}
		switch fields[1] {
		case "status":
			st := s.Status()
			switch st {
			case "running":
				return "VM status: running\r\n", nil
			case "paused":
				return "VM status: paused\r\n", nil
			}
			return "VM status: paused (" + st + ")\r\n", nil
		case "version":
			return s.cfg.Version.QEMU.String() + s.cfg.Version.Package + "\r\n", nil
		case "name":
			if s.cfg.Name == "" {
				return "", nil
			}
			return s.cfg.Name + "\r\n", nil
		}
		return "unknown command: 'info " + fields[1] + "'\r\n", nil
	case "stop", "s":
		s.stop(ctx)
		return "", nil
	case "cont", "c":
		s.cont(ctx)
		return "", nil
	case "system_powerdown":
		_, err := powerdown(ctx)
		return "", err
	case "quit", "q":
		_, err := quit(ctx)
		return "", err
	case "help", "?":
		return strings.Join(hmpHelp, "\r\n") + "\r\n", nil
	}
	return "unknown command: '" + fields[0] + "'\r\n", nil
}

// querySchema answers with a schema of about Config.SchemaSize bytes: the
// registered commands, padded with generated entries, in QEMU's shape.
func (s *Server) querySchema(ctx context.Context, args json.RawMessage) (any, error) {
	if _, err := params(args, nil, nil); err != nil {
		return nil, err
	}
	b := make([]byte, 0, s.cfg.SchemaSize+256)
	b = append(b, '[')
	entry := func(name, meta string) {
		if len(b) > 1 {
			b = append(b, ", "...)
		}
		b = append(b, `{"name": `...)
		b = strconv.AppendQuote(b, name)
		b = append(b, `, "ret-type": "0", "meta-type": `...)
		b = strconv.AppendQuote(b, meta)
		b = append(b, `, "arg-type": "0"}`...)
	}
	for _, n := range s.Commands() {
		entry(n, "command")
	}
	for i := 0; len(b) < s.cfg.SchemaSize-100; i++ {
		entry("x-padding-"+strconv.Itoa(i), "event")
	}
	b = append(b, ']')
	return json.RawMessage(b), nil
}

// fdnameArg is the one argument of getfd and closefd.
func fdnameArg(args json.RawMessage) (string, error) {
	p, err := params(args, []string{"fdname"}, nil)
	if err != nil {
		return "", err
	}
	name, _, err := stringParam(p, "fdname")
	return name, err
}

// receivedFile is the first descriptor that came with the command; like
// QEMU, it closes any others.
func receivedFile(ctx context.Context) (*os.File, error) {
	files := ReceivedFiles(ctx)
	if len(files) == 0 {
		return nil, Errorf("GenericError", "No file descriptor supplied via SCM_RIGHTS")
	}
	for _, f := range files[1:] {
		f.Close()
	}
	return files[0], nil
}

func (s *Server) getfd(ctx context.Context, args json.RawMessage) (any, error) {
	name, err := fdnameArg(args)
	if err != nil {
		return nil, err
	}
	file, err := receivedFile(ctx)
	if err != nil {
		return nil, err
	}
	if name != "" && name[0] >= '0' && name[0] <= '9' {
		file.Close()
		return nil, Errorf("GenericError", "Parameter 'fdname' expects a name not starting with a digit")
	}
	s.mu.Lock()
	if old := s.fds[name]; old != nil {
		old.Close()
	}
	s.fds[name] = file
	s.mu.Unlock()
	return nil, nil
}

func (s *Server) closefd(ctx context.Context, args json.RawMessage) (any, error) {
	name, err := fdnameArg(args)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.fds[name]
	delete(s.fds, name)
	s.mu.Unlock()
	if f == nil {
		return nil, Errorf("GenericError", "File descriptor named '%s' not found", name)
	}
	return nil, f.Close()
}

func (s *Server) addfd(ctx context.Context, args json.RawMessage) (any, error) {
	p, err := params(args, nil, []string{"fdset-id", "opaque"})
	if err != nil {
		return nil, err
	}
	id, hasID, err := intParam(p, "fdset-id")
	if err != nil {
		return nil, err
	}
	opaque, _, err := stringParam(p, "opaque")
	if err != nil {
		return nil, err
	}
	file, err := receivedFile(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !hasID {
		// QEMU picks the lowest unused id.
		for used := true; used; id++ {
			used = false
			for _, set := range s.fdsets {
				used = used || set.id == id
			}
			if !used {
				break
			}
		}
	}
	i := 0
	for i < len(s.fdsets) && s.fdsets[i].id != id {
		i++
	}
	if i == len(s.fdsets) {
		s.fdsets = append(s.fdsets, fdset{id: id})
	}
	s.fdsets[i].fds = append(s.fdsets[i].fds, fdEntry{f: file, opaque: opaque})
	return map[string]int{"fdset-id": id, "fd": int(file.Fd())}, nil
}

func (s *Server) queryFDSets(ctx context.Context, args json.RawMessage) (any, error) {
	if _, err := params(args, nil, nil); err != nil {
		return nil, err
	}
	type fdInfo struct {
		FD     int    `json:"fd"`
		Opaque string `json:"opaque,omitempty"`
	}
	type setInfo struct {
		FDSetID int      `json:"fdset-id"`
		FDs     []fdInfo `json:"fds"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]setInfo, 0, len(s.fdsets))
	for _, set := range s.fdsets {
		si := setInfo{FDSetID: set.id, FDs: []fdInfo{}}
		for _, e := range set.fds {
			si.FDs = append(si.FDs, fdInfo{FD: int(e.f.Fd()), Opaque: e.opaque})
		}
		out = append(out, si)
	}
	return out, nil
}

// Reply returns a handler that answers every call with result.
func Reply(result any) HandlerFunc {
	return func(context.Context, json.RawMessage) (any, error) { return result, nil }
}

// Echo is a handler that answers with the command's arguments ({} when
// none).
func Echo(_ context.Context, args json.RawMessage) (any, error) {
	if args == nil {
		return nil, nil
	}
	return args, nil
}

// Fail returns a handler that answers every call with an error reply.
func Fail(class, desc string) HandlerFunc {
	return func(context.Context, json.RawMessage) (any, error) { return nil, &Error{Class: class, Desc: desc} }
}

// Slow returns h delayed by d: the reply comes d later (the connection's
// later commands wait too, as in QEMU). A server Close cuts the wait short.
func Slow(d time.Duration, h HandlerFunc) HandlerFunc {
	return func(ctx context.Context, args json.RawMessage) (any, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return h(ctx, args)
	}
}

// Hang is a handler that never answers (ErrNoReply).
func Hang(context.Context, json.RawMessage) (any, error) { return nil, ErrNoReply }

// Drop is a handler that closes the connection instead of answering: the
// client sees it vanish mid-command.
func Drop(context.Context, json.RawMessage) (any, error) { return nil, ErrDropConnection }

// Garbage returns a handler that writes p to the client instead of a reply
// (invalid JSON, a message that is not QMP, …).
func Garbage(p []byte) HandlerFunc {
	return func(ctx context.Context, _ json.RawMessage) (any, error) {
		if err := WriteRaw(ctx, p); err != nil {
			return nil, err
		}
		return nil, ErrNoReply
	}
}

// Huge returns a handler whose reply is a JSON string of n bytes, to test a
// client's message size limit or its handling of large replies.
func Huge(n int) HandlerFunc {
	return func(context.Context, json.RawMessage) (any, error) {
		b := make([]byte, n+2)
		b[0], b[n+1] = '"', '"'
		for i := 1; i <= n; i++ {
			b[i] = 'x'
		}
		return json.RawMessage(b), nil
	}
}

// jsonString encodes v as a JSON string.
func jsonString(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}
