// Package reactor holds the server and client reactors of Mercurial's
// unified frame protocol ("wire protocol version 2"), wire-compatible with
// Mercurial 6.3, as sans-IO machines speaking the project's action
// vocabulary (package action).
//
// A ServerMachine is handed frames a client sent (OnFrame, or bytes through
// Feed) and delivers Command values to run; the application answers with
// RespondObjects, RespondCommandError or RespondServerError on an
// OutputStream, and the reactor turns the answer into frames, CBOR encoded,
// coalesced and content encoded (identity, zlib or zstd-8mb) exactly as
// Mercurial does. A ClientMachine issues command requests (CallCommand,
// FlushCommands) and delivers Response values for the frames the server
// sends back, decoding content-encoded streams.
//
// Mercurial's action names map onto ours: sendframes is Send, runcommand and
// responsedata are Deliver, wantframe and noop are WantMore, error is Error.
//
// Every input method changes state at once — nothing is deferred into lazy
// generators as in Mercurial — and queues actions; the caller then calls Next
// until it returns WantMore or Error. After an Error a reactor is terminal
// and Next keeps returning that Error.
//
// Where Mercurial is weak, these reactors differ on purpose, each tested
// under a name that says so: partially received requests and the bytes
// buffered per request are limited; a request id reused while its command
// is active is rejected; requests still partial at input end are reported;
// request-id parity is checked; and frames or payloads that make Mercurial
// raise (text-output and progress frames at the client, a client that
// advertises only unknown encodings, malformed CBOR) yield an Error or a
// Deliver action instead.
package reactor
