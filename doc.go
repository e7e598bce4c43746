// Package wirereactor is the root of a library for speaking message protocols
// without owning the I/O.
//
// Protocol logic lives in sans-IO machines: plain values fed bytes, frames or
// application requests that answer with action values (package action) —
// send these bytes, deliver this message, this is an error, want more input.
// A machine never reads a socket, starts a goroutine, locks or reads the
// clock, so it can be embedded in any event loop and tested with nothing at
// all. Transports (package transport and its unix, tcp and ws subpackages)
// own the sockets and drive machines.
//
// The packages, from the wire up:
//
//	frame      the frame of Mercurial's unified frame protocol: 8-byte header, types, flags, human syntax
//	hgcbor     CBOR exactly as Mercurial writes and reads it
//	framing    bytes ⇄ frames and bytes ⇄ JSON messages: incremental, bounded, zero-copy decoders; frame builders
//	action     the action vocabulary every machine speaks
//	reactor    Mercurial's server and client reactors as sans-IO machines
//	qmp        QMP messages, client and server machines, and the driven Client
//	qmp/qmptest an in-process fake QEMU for tests and simulators
//	transport  Session: the connection life cycle driving any machine; unix, tcp and ws adapters
//
// This package holds no code; its tests check the architecture's rules (see
// arch_test.go).
package wirereactor
