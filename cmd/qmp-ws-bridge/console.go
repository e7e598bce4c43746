package main

import _ "embed"

// consolePage is the web console: it connects to /vm/NAME from the
// browser, negotiates, runs commands and lists events as they arrive.
//
//go:embed console.html
var consolePage string
