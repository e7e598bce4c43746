package hgcbor

// ItemLen exports itemLen to the tests.
var ItemLen = itemLen

// CheckSlow is Check without its fast path.
func CheckSlow(o DecodeOptions, data []byte) (int, int64, error) { return o.checkSlow(data) }
