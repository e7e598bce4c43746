package main

import (
	"context"
	"encoding/json"
	"net"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// simVersion is what the simulator announces.
var simVersion = qmp.Version{QEMU: qmp.VersionTriple{Major: 7, Minor: 2, Micro: 0}, Package: "wirereactor simulator"}

// simulator is the built-in fake QEMU the shell talks to when given no
// address: a qmptest server (QEMU 7.2's runstate commands and events,
// query-commands, HMP, quit) served over an in-process pipe, with a few
// more commands a person tries first.
type simulator struct {
	srv *qmptest.Server
}

// startSimulator starts a simulator with a running guest and returns the
// client end of its connection.
func startSimulator(context.Context) (*simulator, net.Conn, error) {
	srv := qmptest.NewServer(qmptest.Config{Name: "simulator", Version: simVersion})
	srv.Handle("system_reset", func(ctx context.Context, _ json.RawMessage) (any, error) {
		return nil, qmptest.Emit(ctx, "RESET", map[string]any{"guest": false, "reason": "host-qmp-system-reset"})
	})
	srv.Handle("query-kvm", qmptest.Reply(map[string]bool{"enabled": false, "present": false}))
	srv.Handle("query-events", qmptest.Reply([]map[string]string{
		{"name": "POWERDOWN"}, {"name": "RESET"}, {"name": "RESUME"}, {"name": "SHUTDOWN"}, {"name": "STOP"},
	}))
	server, client := net.Pipe()
	if err := srv.ServeConn(server); err != nil {
		_ = client.Close()
		_ = srv.Close()
		return nil, nil, err
	}
	return &simulator{srv: srv}, client, nil
}

// close ends the simulator and waits for its goroutines.
func (s *simulator) close() { _ = s.srv.Close() }
