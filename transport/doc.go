// Package transport drives sans-IO protocol machines (action.Machine) over
// byte streams: a Session owns one connection at a time, with one read loop
// feeding the machine and one write loop carrying out its Send actions
// (started at the first output that needs it), and the qemu.qmp life cycle
// Idle → Connecting → Running → Disconnecting → Idle.
//
// The package knows no protocol and no socket family: subpackages unix, tcp
// and ws provide Endpoints (dial and listen) and connections; anything that
// yields a net.Conn (net.Pipe, a TLS connection, a test fake) can be driven
// with Session.Start.
//
// # Concurrency and backpressure
//
// Every call into the machine happens under the session's lock: the
// Feed/FeedEOF of whoever reads the stream and the functions passed to Do.
// The lock is never held while blocked on the network, on the application
// or on buffer space (a non-blocking write, below, may run under it).
//
// One goroutine at a time reads the stream and feeds the machine: it holds
// the reader role. The read loop holds it at first. A caller waiting for a
// delivery (Recv, or Await for values routed by Consume) while nobody reads
// takes the role and reads and drives the machine itself, so a reply meant
// for it costs no goroutine hand-off; callers arriving while someone reads
// wait for the delivery (or for the role, handed to the first of them when
// its holder is done). The read loop hands the role to a waiting caller after
// each read, and takes a free role back after a short idle time (a few
// milliseconds), so a connection nobody waits on is still read (events,
// the end of the stream).
// A leading caller's context interrupts its read through a read deadline in
// the past; on a stream without read deadlines only a caller whose context
// cannot end leads.
//
// Output is double-buffered: Send actions are copied into the pending output
// buffer, and the write loop swaps it for a spare buffer and writes it in one
// call, so steady-state writing allocates nothing. When the write loop is
// idle and the stream can write without blocking (a TryWriter, as the
// connections of packages unix and ws are, or a plain *net.TCPConn or
// *net.UnixConn; on Linux), the goroutine that ran the machine instead makes
// one non-blocking write of up to 16 KiB of output itself (releasing the
// lock for the syscall; output others queue meanwhile follows in its next
// attempt), saving a wake-up of the write loop per message. Whatever
// the kernel does not take at once is left for the write loop as above, so
// order, limits and error reporting are unchanged. Session.Cork holds small
// output back for a caller about to add its own (Do coming, a reply just
// handed over), so that several messages leave in one write. When more than
// Config.MaxPendingOutput bytes wait, the reader stops reading and Do
// blocks until the writer catches up.
//
// Delivered values wait in a queue read by Recv. When Config.DeliverQueue
// values wait, the read loop stops reading, so the kernel's socket buffers
// fill and the peer is pushed back. Both limits are soft by at most what one
// machine call produces (the output of one read of at most
// Config.ReadBufferSize bytes, or of one Do), so memory stays bounded.
// Delivered values outlive the machine call that produced them (they wait
// in the queue, or Consume passes them on), while the read buffer is reused
// for the next read. So each one is passed through Config.Retain or, when
// that is nil and the machine implements action.Retainer, through the
// machine's Retain, which copies whatever the value aliases.
//
// # How a session ends
//
// The first of these is the root cause, kept and returned by Disconnect
// (and by Recv and Do once the queue is drained): a machine's Error action;
// a read or write error; the peer closing the stream, which is
// ErrPeerClosed (errors.Is io.EOF; so is a machine's Error with io.EOF,
// its clean end after FeedEOF) unless the machine reports a partial
// message from FeedEOF as its own error. Errors caused by the session
// closing the stream itself are never reported. The session then stops at
// once: output still queued is dropped, so a peer that half-closes its
// side after its last request does not get the answers, unless
// Config.HalfClose is set. A clean local Disconnect flushes queued output
// first.
package transport
