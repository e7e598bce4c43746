// Package framing turns bytes into frames and frames into bytes for
// Mercurial's unified frame protocol, without doing any I/O of its own.
//
// Inbound, a Decoder is fed bytes in whatever pieces the transport read them
// and hands out one frame.Frame at a time. It follows the action.Machine rule:
// Feed only queues input, Next is called until it reports WantMore (or
// Error). It copies nothing it does not have to — a frame that arrived whole
// inside one Feed is delivered as a slice of the caller's bytes — and a frame
// split across Feeds is assembled in a buffer bounded by
// DecoderConfig.MaxPayload.
//
// Outbound, an OutputStream appends frames to a caller's buffer the way
// Mercurial 6.3's wireprotoframing builds them: a command request split
// across frames with command data read from an io.Reader; the command
// response header, data, end-of-stream, alternate-location and error
// frames; error-response and text-output frames; and a ResponseEmitter that
// coalesces small chunks of response data into full frames. The bytes are
// exactly Mercurial's (checked against vectors Mercurial itself produced, in
// testdata/hg-builders.json). Unlike Mercurial, which returns lazy frame
// generators, every builder does its work and updates the stream's state when
// it is called.
//
// Nothing in this package starts a goroutine, blocks, or reads the clock; the
// only reading it does is from the io.Reader a caller hands the command-data
// builder.
package framing
