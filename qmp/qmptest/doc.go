// Package qmptest provides an in-process QMP server — a fake QEMU — for
// testing code that speaks QMP, built on qmp.ServerMachine and
// transport.Session.
//
// The default command set behaves like QEMU 7.2 (see NewServer): a runstate
// that stop and cont change with STOP and RESUME events, quit with
// SHUTDOWN, the reply and a close, query-qmp-schema as a large reply, getfd
// and add-fd over unix sockets, CommandNotFound in QEMU's words. Handle adds
// or replaces commands; a handler may emit events before (Emit) or after
// (EmitAfter) its reply and inject faults: drop the connection (Drop), write
// garbage or half messages (WriteRaw, Garbage), reply hugely (Huge) or
// slowly (Slow), or not at all (Hang).
//
// HandleQEMU72 goes further: every command real QEMU 7.2 lists, with its
// query-commands and query-qmp-schema, replies and events captured from
// qemu-system-x86_64 (testdata/qemu72, checked against QEMU by this
// package's tests), argument checks from that schema, and state for the
// block, object and device commands. qmp-shell's built-in simulator is it.
//
// A server serves one client at a time, like a QEMU monitor, unless
// Config.MultiClient is set. In that default mode a reply to a command still
// running when its client left goes to the next client — the stale reply
// with an unknown id a QMP client must drop.
//
// Serve it on a unix socket, TCP or WebSocket (Start, StartEndpoint, Serve,
// ServeConn) and connect a qmpclient.Client to Addr. Close joins every goroutine.
package qmptest
