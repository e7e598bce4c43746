//go:build !linux

package trywrite

import "syscall"

// Writer is only implemented on Linux; elsewhere New returns nil.
type Writer struct{}

func newWriter(syscall.Conn) *Writer { return nil }

// Write returns 0: nothing is written.
func (*Writer) Write([]byte) int { return 0 }

// Write2 returns 0: nothing is written.
func (*Writer) Write2(a, b []byte) int { return 0 }
