// Package qmpclient is the driven QMP client: a Client runs a
// qmp.ClientMachine over a transport.Session. Connect to "unix:/path",
// "tcp:host:port" or "ws://host/path" (see transport/endpoint), or listen
// for a QEMU started in client mode (StartServer, Accept); Execute from many
// goroutines at once (pipelined, each reply to its own caller); Listen for
// events through bounded queues that never block the reader; pass file
// descriptors over a unix socket with ExecuteWithFiles.
//
// Every call that waits takes a context and returns once it ends, however
// wedged the peer (a QEMU stopped with SIGSTOP, a server that never reads).
//
// The protocol itself — messages, the handshake, correlating replies — is
// the sans-IO package qmp; this package adds the goroutines, the socket and
// the waiting.
package qmpclient
