package hgcbor

// ItemLen exports itemLen to the tests.
var ItemLen = itemLen
