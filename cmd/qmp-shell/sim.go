package main

import (
	"context"
	"net"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// simVersion is what the simulator announces.
var simVersion = qmp.Version{QEMU: qmp.VersionTriple{Major: 7, Minor: 2, Micro: 0}, Package: "wirereactor simulator"}

// simulator is the built-in fake QEMU the shell talks to when given no
// address: a qmptest server answering every command of QEMU 7.2 as real
// QEMU does (qmptest.Server.HandleQEMU72: replies and events captured from
// qemu-system-x86_64), served over an in-process pipe.
type simulator struct {
	srv *qmptest.Server
}

// startSimulator starts a simulator with a running guest and returns the
// client end of its connection.
func startSimulator(context.Context) (*simulator, net.Conn, error) {
	srv := qmptest.NewServer(qmptest.Config{Name: "simulator", Version: simVersion})
	srv.HandleQEMU72()
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
