package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transport"
)

// simulator is the built-in fake QEMU the shell talks to when given no
// address: a qmp.ServerMachine driven by a transport.Session over an
// in-process pipe, with a handful of commands that behave like QEMU 7.2's
// and raise the events QEMU raises (STOP, RESUME, RESET, POWERDOWN,
// SHUTDOWN).
type simulator struct {
	mu      sync.Mutex
	running bool
	name    string

	sess *transport.Session[qmp.Command, *qmp.ServerMachine]
	done chan struct{}
}

// simVersion is what the simulator announces.
var simVersion = qmp.Version{QEMU: qmp.VersionTriple{Major: 7, Minor: 2, Micro: 0}, Package: "wirereactor simulator"}

// simHandler answers one command: the return value (nil for {}), the events
// to send before the reply, or an error class and description.
type simHandler func(s *simulator, args json.RawMessage) (ret any, events []simEvent, errClass, errDesc string)

type simEvent struct {
	name string
	data any
}

var simCommands map[string]simHandler

func init() {
	simCommands = map[string]simHandler{
		"query-status": func(s *simulator, _ json.RawMessage) (any, []simEvent, string, string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			status := "paused"
			if s.running {
				status = "running"
			}
			// QEMU's member order.
			return struct {
				Status     string `json:"status"`
				Singlestep bool   `json:"singlestep"`
				Running    bool   `json:"running"`
			}{status, false, s.running}, nil, "", ""
		},
		"stop": func(s *simulator, _ json.RawMessage) (any, []simEvent, string, string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.running {
				return nil, nil, "", ""
			}
			s.running = false
			return nil, []simEvent{{name: "STOP"}}, "", ""
		},
		"cont": func(s *simulator, _ json.RawMessage) (any, []simEvent, string, string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.running {
				return nil, nil, "", ""
			}
			s.running = true
			return nil, []simEvent{{name: "RESUME"}}, "", ""
		},
		"system_reset": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			return nil, []simEvent{{name: "RESET", data: map[string]any{"guest": false, "reason": "host-qmp-system-reset"}}}, "", ""
		},
		"system_powerdown": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			return nil, []simEvent{{name: "POWERDOWN"}}, "", ""
		},
		"quit": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			return nil, []simEvent{{name: "SHUTDOWN", data: map[string]any{"guest": false, "reason": "host-qmp-quit"}}}, "", ""
		},
		"query-version": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			return simVersion, nil, "", ""
		},
		"query-name": func(s *simulator, _ json.RawMessage) (any, []simEvent, string, string) {
			return map[string]any{"name": s.name}, nil, "", ""
		},
		"query-kvm": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			return map[string]any{"enabled": false, "present": false}, nil, "", ""
		},
		"query-commands": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			names := simCommandNames()
			list := make([]map[string]string, len(names))
			for i, n := range names {
				list[i] = map[string]string{"name": n}
			}
			return list, nil, "", ""
		},
		"query-events": func(*simulator, json.RawMessage) (any, []simEvent, string, string) {
			var list []map[string]string
			for _, n := range []string{"POWERDOWN", "RESET", "RESUME", "SHUTDOWN", "STOP"} {
				list = append(list, map[string]string{"name": n})
			}
			return list, nil, "", ""
		},
		"human-monitor-command": (*simulator).hmp,
	}
}

// simCommandNames lists the simulator's commands, sorted, with
// qmp_capabilities (which the machine answers itself).
func simCommandNames() []string {
	names := []string{"qmp_capabilities"}
	for n := range simCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// hmp runs a few HMP commands on top of the QMP ones.
func (s *simulator) hmp(args json.RawMessage) (any, []simEvent, string, string) {
	var a struct {
		CommandLine *string `json:"command-line"`
	}
	if err := json.Unmarshal(args, &a); err != nil || a.CommandLine == nil {
		return nil, nil, "GenericError", "Parameter 'command-line' is missing"
	}
	words := strings.Fields(*a.CommandLine)
	if len(words) == 0 {
		return "", nil, "", ""
	}
	qmpName := map[string]string{"stop": "stop", "cont": "cont", "c": "cont", "system_reset": "system_reset", "system_powerdown": "system_powerdown"}
	switch {
	case len(words) == 2 && words[0] == "info" && words[1] == "status":
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.running {
			return "VM status: running\r\n", nil, "", ""
		}
		return "VM status: paused\r\n", nil, "", ""
	case len(words) == 2 && words[0] == "info" && words[1] == "version":
		return simVersion.QEMU.String() + " (" + simVersion.Package + ")\r\n", nil, "", ""
	case len(words) == 1 && qmpName[words[0]] != "":
		_, events, class, desc := simCommands[qmpName[words[0]]](s, nil)
		if class != "" {
			return desc + "\r\n", events, "", ""
		}
		return "", events, "", ""
	}
	return "unknown command: '" + words[0] + "'\r\n", nil, "", ""
}

// startSimulator starts a simulator with a running guest and returns the
// client end of its connection.
func startSimulator(ctx context.Context) (*simulator, net.Conn, error) {
	s := &simulator{running: true, name: "simulator", done: make(chan struct{})}
	s.sess = transport.New(transport.Config[qmp.Command, *qmp.ServerMachine]{
		Name:       "simulator",
		NewMachine: func() *qmp.ServerMachine { return qmp.NewServerMachine(qmp.ServerConfig{Version: simVersion}) },
	})
	server, client := net.Pipe()
	if err := s.sess.Start(ctx, server); err != nil {
		_ = client.Close()
		return nil, nil, err
	}
	// The machine's first action is the greeting: a Do with nothing to put
	// in makes the session drain it without waiting for client input.
	if err := s.sess.Do(ctx, func(*qmp.ServerMachine) error { return nil }); err != nil {
		_ = s.sess.Disconnect(ctx)
		_ = client.Close()
		return nil, nil, err
	}
	go s.serve()
	return s, client, nil
}

// serve answers commands until the connection ends.
func (s *simulator) serve() {
	defer close(s.done)
	ctx := context.Background()
	for {
		cmd, err := s.sess.Recv(ctx)
		if err != nil {
			return
		}
		h := simCommands[cmd.Name]
		var ret any
		var events []simEvent
		class, desc := "CommandNotFound", fmt.Sprintf("The command %s has not been found", cmd.Name)
		if h != nil {
			ret, events, class, desc = h(s, cmd.Arguments)
		}
		var retJSON []byte
		if class == "" && ret != nil {
			if retJSON, err = json.Marshal(ret); err != nil {
				class, desc = "GenericError", err.Error()
			}
		}
		err = s.sess.Do(ctx, func(m *qmp.ServerMachine) error {
			now := time.Now()
			for _, ev := range events {
				var data []byte
				if ev.data != nil {
					data, _ = json.Marshal(ev.data)
				}
				if _, err := m.SendEvent(ev.name, data, now); err != nil {
					return err
				}
			}
			if class != "" {
				return m.ReturnError(cmd.ID, class, desc)
			}
			return m.Return(cmd.ID, retJSON)
		})
		if err != nil {
			return
		}
		if cmd.Name == "quit" {
			// QEMU answers quit, then closes the connection.
			_ = s.sess.Disconnect(ctx)
			return
		}
	}
}

// close ends the simulator and waits for its goroutine.
func (s *simulator) close() {
	_ = s.sess.Disconnect(context.Background())
	<-s.done
}
