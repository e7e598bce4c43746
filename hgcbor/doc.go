// Package hgcbor encodes and decodes CBOR exactly as Mercurial 6.3's
// mercurial/utils/cborutil.py does, so that payloads built here are the bytes
// Mercurial builds and payloads Mercurial builds decode here.
//
// # Value model
//
// Go values map onto the Python values cborutil handles:
//
//	Go (encode)                        CBOR                       Go (decode)
//	nil                                null (0xf6)                nil
//	bool                               false/true                 bool
//	int, int8…int64, uint…uint64,      unsigned/negative integer  int64; uint64 above MaxInt64;
//	  NegInt, *big.Int in [-2^64, 2^64)                             NegInt below MinInt64
//	[]byte, Bytes                      byte string (major 2)      []byte; Bytes as a map key or set element
//	string                             text string (major 3)      string
//	[]any, any other slice or array    array                      []any
//	map[any]any, map[Bytes]any,        map                        map[any]any
//	  map[string]any, any other map
//	Set                                tag 258 + array            Set
//	RawMessage                         copied verbatim            (never produced)
//
// A Go string is a CBOR text string, never a byte string: Mercurial's
// b'name' is Bytes("name") (or []byte("name")), its 'name' is "name". So
// map[string]any has text keys and map[Bytes]any has byte-string keys; the
// command request {b'name': b'foo'} is map[Bytes]any{"name": Bytes("foo")}.
// Note that Python 3 cborutil has no encoder for str at all: Mercurial never
// sends text strings and its decoder rejects them. This package encodes
// them (valid UTF-8 only) so that the full value model round-trips, and
// decodes them, but payloads meant for Mercurial should hold only bytes.
//
// Integers are limited to [-2^64, 2^64), the range cborutil accepts.
// Floating point numbers, other semantic tags and simple values other than
// false, true and null are rejected in both directions, as Mercurial does.
//
// # Ordering
//
// Maps and sets are written in the order Python's sorted() gives with
// cborutil's _mixedtypesortkey: by the name of the Python type first
// ("NoneType" < "bool" < "bytes" < "int" < "str"), then by value within a
// type (bytes and text lexicographically by content, integers numerically,
// False before True). This is neither RFC 7049 canonical order nor RFC 8949
// deterministic order, both of which sort by the encoded key and so put the
// shorter b'b' before b'aa'; Mercurial puts b'aa' first. Keys that Python
// would consider the same (int(1) and int64(1) in one map[any]any, say) are
// rejected with ErrDuplicateKey, since no ordering of them is Mercurial's.
//
// # Decoding
//
// The decoder accepts everything the encoder writes plus the
// indefinite-length items Mercurial's streaming encoders emit (byte strings,
// arrays, maps; text strings too). An indefinite-length byte string decodes
// to the concatenation of its chunks. Map keys and set elements must be
// scalars (Mercurial rejects collections there as well). A duplicate map key
// keeps the last value and a duplicate set element is dropped, as in Python;
// a decoded Set is sorted in Mercurial's order. Decoded values never alias
// the input.
//
// # Limits
//
// Decoding is bounded by DecodeOptions (and the Decoder's fields of the
// same names): nesting depth, items, and the decoded size, the memory the
// values built take, counted from the declared lengths before anything is
// allocated. The default budget is DefaultDecodedRatio (4) bytes per input
// byte, at least DefaultDecodedFloor (64 KiB); for Unmarshal and DecodeAll
// it applies to the whole input, for the Decoder to each item. A Go
// map[any]any takes a few hundred bytes however small, so a long stream of
// small maps, as Mercurial's responses are, decodes to some twenty times
// its size: decode it item by item with a Decoder, or raise
// MaxDecodedBytes. DecodeOptions.Check validates and measures an item
// without building it, and RawMessage's readers (Kind, Bytes, Entries,
// Lookup) read checked CBOR in place: the decoder's fast path.
//
// # Why not fxamacker/cbor
//
// github.com/fxamacker/cbor/v2 cannot express Mercurial's map order (its
// sort modes compare encoded keys), nor the Bytes/Set value model, nor an
// incremental decoder that waits for more input, so encoding and decoding are
// written here against the RFC 8949 layout; fxamacker/cbor serves in the
// tests as an independent conforming decoder for everything this package
// writes.
package hgcbor
