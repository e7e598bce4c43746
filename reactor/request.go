package reactor

import (
	"math"

	"github.com/wirereactor/wirereactor/hgcbor"
)

// Command is a command request the server reactor delivers: run it, then
// answer with one of the Respond methods.
//
// Every field is owned by the receiver: nothing aliases the caller's input
// or memory the reactor writes again.
type Command struct {
	RequestID uint16
	Name      string // the command name (a CBOR byte string on the wire)
	Args      Args   // the arguments, decoded on demand
	Redirect  any    // the request's "redirect" value, decoded; nil when absent
	Data      []byte // command data; nil when the request announced none
}

// Args are a command's arguments, the map under b'args' in its request,
// kept as the CBOR the client sent and decoded on demand: Get decodes one
// argument, Map all of them into the map[any]any hgcbor decodes (keys are
// hgcbor.Bytes). The reactor checked all of it when the request arrived —
// well-formed, Mercurial's subset, within ServerMachineConfig.MaxDecodedBytes — so
// decoding it cannot fail and never takes more than that budget.
//
// The zero Args is an empty map. Args are read-only and may be shared
// between goroutines; their bytes may share an allocation with other
// requests' arguments, which they keep alive.
type Args struct {
	raw hgcbor.RawMessage // an encoded map; nil for an empty one
}

// checkOptions read requests the way Mercurial's decoder does (no text
// strings). Their own budget is unbounded: decodeRequest measures a request
// against ServerMachineConfig.MaxDecodedBytes, and Args decode only what it
// measured.
var checkOptions = hgcbor.DecodeOptions{MaxDecodedBytes: math.MaxInt64, RejectText: true}

// Get returns the argument name (the value of the byte-string key name; the
// last one when the client repeated it, as decoding the map keeps it),
// decoded, and whether there is one.
func (a Args) Get(name string) (any, bool) {
	raw, ok := a.raw.Lookup(name)
	if !ok {
		return nil, false
	}
	v, err := checkOptions.Unmarshal(raw)
	if err != nil {
		panic("reactor: checked arguments failed to decode: " + err.Error()) // unreachable: checked on arrival
	}
	return v, true
}

// Raw returns the argument name still encoded, without decoding it. The
// bytes are shared: do not modify them.
func (a Args) Raw(name string) (hgcbor.RawMessage, bool) { return a.raw.Lookup(name) }

// Map returns every argument, decoded as hgcbor decodes a map (byte-string
// keys are hgcbor.Bytes; a repeated key keeps its last value). It is never
// nil, and the caller owns it.
func (a Args) Map() map[any]any {
	if len(a.raw) == 0 {
		return map[any]any{}
	}
	v, err := checkOptions.Unmarshal(a.raw)
	if err != nil {
		panic("reactor: checked arguments failed to decode: " + err.Error()) // unreachable: checked on arrival
	}
	return v.(map[any]any)
}

// Encoded returns the arguments as the client encoded them (an empty map
// when there are none). The bytes are shared: do not modify them.
func (a Args) Encoded() hgcbor.RawMessage {
	if len(a.raw) == 0 {
		return emptyMap
	}
	return a.raw
}

var emptyMap = hgcbor.RawMessage{0xa0}

// String renders the arguments as a Python literal, for logs.
func (a Args) String() string { return hgcbor.PythonLiteral(a.Map()) }

// requestFields are the keys of a command request's map that matter.
var requestFields = []string{"name", "args", "redirect"}

// decodeRequest reads a complete command request the way Mercurial does —
// it decodes every CBOR item of the payload and reads the first as the map
// {b'name': …, b'args': {…}, b'redirect': …} — but builds only what the
// Command keeps: the name, the redirect and a copy of the encoded
// arguments. What it keeps, with the arguments as Map would decode them,
// must fit the request's decoded-size budget, measured on the whole
// request (an upper bound of what is kept). It fills in *cmd, which holds
// the zero Command, and returns the error to fail with (*cmd is then to be
// discarded).
func (r *ServerMachine) decodeRequest(cmd *Command, rid uint16, payload, data []byte) error {
	var fields [3]hgcbor.RawMessage // name, args, redirect
	var size int64                  // the decoded size of the first item, the request
	for off := 0; off < len(payload); {
		var n int
		var s int64
		var err error
		if off == 0 {
			n, s, err = checkOptions.CheckFields(payload, requestFields, fields[:])
		} else {
			n, s, err = checkOptions.Check(payload[off:])
		}
		if err != nil {
			if de, ok := err.(*hgcbor.DecodeError); ok {
				de.Offset += off
			}
			// Mercurial lets the decoding exception escape the reactor.
			return &ProtocolError{Msg: "error decoding CBOR from command request", Err: err}
		}
		if off == 0 {
			size = s
		}
		off += n
	}
	if len(payload) == 0 {
		// Mercurial raises IndexError here.
		return protoErr("command request frame did not contain CBOR data")
	}
	name, args, redirect := fields[0], fields[1], fields[2] // nil when absent, or the request is no map
	if name == nil {
		return protoErr(`command request missing "name" field`)
	}
	nb, ok := name.Bytes()
	if !ok {
		return protoErr(`command request "name" field is not a byte string`)
	}
	if args != nil && args.Kind() != hgcbor.KindMap {
		return protoErr(`command request "args" field is not a map`)
	}

	// The budget: the request as decoding would build it, which holds the
	// arguments as Map decodes them and the redirect, plus the copies kept.
	budget := r.cfg.MaxDecodedBytes
	if budget <= 0 {
		budget = hgcbor.DefaultDecodedSize(len(payload))
	}
	if size += int64(len(nb) + len(args)); size > budget {
		return limitErr(rid, "decoded bytes", size, budget)
	}

	cmd.RequestID, cmd.Name, cmd.Data = rid, commandName(nb), data
	if len(args) > 1 { // 0xa0, the empty map, is the zero Args
		cmd.Args.raw = r.keep(args)
	}
	if redirect != nil {
		cmd.Redirect, _ = checkOptions.Unmarshal(redirect) // checked above
	}
	return nil
}

// Arguments up to keepMax bytes are copied into shared chunks of keepChunk
// bytes, one allocation for many requests instead of one each. A chunk is
// never written where it was handed out, so the Args of different requests
// can share it; an Args kept alive keeps its chunk alive, a bounded cost.
const (
	keepMax   = 256
	keepChunk = 4096
)

// keep returns a copy of p that no later input or reactor write touches.
func (r *ServerMachine) keep(p []byte) []byte {
	if len(p) > keepMax {
		return append([]byte(nil), p...)
	}
	if cap(r.kept)-len(r.kept) < len(p) {
		r.kept = make([]byte, 0, keepChunk)
	}
	start := len(r.kept)
	r.kept = append(r.kept, p...)
	return r.kept[start:len(r.kept):len(r.kept)]
}

// commandName returns the command name b as a string, without allocating
// for the commands Mercurial's version 2 protocol defines.
func commandName(b []byte) string {
	switch string(b) { // no allocation: each case returns a constant
	case "branchmap":
		return "branchmap"
	case "capabilities":
		return "capabilities"
	case "changesetdata":
		return "changesetdata"
	case "filedata":
		return "filedata"
	case "filesdata":
		return "filesdata"
	case "heads":
		return "heads"
	case "known":
		return "known"
	case "listkeys":
		return "listkeys"
	case "lookup":
		return "lookup"
	case "manifestdata":
		return "manifestdata"
	case "pushkey":
		return "pushkey"
	case "rawstorefiledata":
		return "rawstorefiledata"
	}
	return string(b)
}
