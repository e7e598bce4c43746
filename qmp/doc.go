// Package qmp speaks the QEMU Machine Protocol.
//
// This part of the package is sans-IO: messages and models (Greeting,
// Response, Event, Command), a ClientMachine that performs the opening
// handshake and correlates replies with the commands that caused them, and a
// ServerMachine that greets, negotiates and checks commands the way QEMU 7.2
// does. Both are action.Machine values: feed them the peer's bytes, call Next
// until WantMore, carry out the Send actions and consume the Deliver actions.
// They never touch a socket, a goroutine, a lock or the clock.
//
// The package is sans-IO in full: embedding it links no socket, TLS, HTTP
// or WebSocket code. The driven client, which runs a ClientMachine over a
// connection, is package qmp/qmpclient; the address syntax ("unix:/path",
// "tcp:host:port", "ws://…") is package transport/endpoint; a fake QEMU
// for tests is package qmp/qmptest.
//
// Facts about QEMU the machines are built on, checked against QEMU 7.2:
//   - QEMU reads a JSON stream, not lines; both machines read the same way
//     (jsonstream.Decoder), so commands may be split, glued or pretty-printed.
//   - QEMU rewrites the ids it echoes (1.0 becomes 1): ids are compared by
//     value (SameID); the client uses integer ids that stay unique for the
//     life of a ClientMachine, across Reset, so a stale reply sent to the next
//     connection matches nothing and is dropped.
//   - Errors about input QEMU could not parse carry no id.
//   - Events can arrive before the reply of the command that caused them, and
//     out-of-band replies can overtake earlier ones.
package qmp
