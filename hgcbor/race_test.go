//go:build race

package hgcbor_test

// raceEnabled: the race detector changes how the runtime allocates (no
// tiny allocator, extra rounding), which the decoded-size model does not
// describe.
const raceEnabled = true
