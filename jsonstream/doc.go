// Package jsonstream splits a byte stream into JSON messages, as QMP needs:
// QEMU reads and writes a stream of JSON values, not lines — commands split
// across writes or glued together without newlines, replies pretty-printed
// over many lines with pretty=on.
//
// A Decoder follows the action.Machine rule: Feed only queues input, Next
// hands out one complete top-level value at a time (a slice of the fed bytes
// when the value arrived whole), and a value split across feeds is assembled
// in a buffer bounded by Config.MaxMessageSize. A syntax error costs the
// partial value and one recoverable *SyntaxError; decoding resumes at the
// next '{', as QEMU's parser does. A message over the size limit is a
// terminal *action.LimitError, reported before it is buffered.
//
// It is its own package, apart from framing (Mercurial's frames), so that
// the QMP machines depend on nothing of Mercurial's.
package jsonstream
