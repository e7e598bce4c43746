//go:build !race

package hgcbor_test

const raceEnabled = false
