// Package transporttest holds what the transport adapters' tests share: a
// goroutine leak check, a bounded test context and sessions running the
// lenmsg test machine.
package transporttest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

// LeakCheck fails t if any goroutine is left once the test and the cleanups
// registered after this call have run (cleanups run last-registered first:
// call it first).
func LeakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// Context is cancelled when t ends, or after 20 s so that a hung test fails
// rather than waiting for the test binary's timeout.
func Context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Session is a transport.Session running lenmsg machines.
type Session = transport.Session[string, *lenmsg.Machine]

// NewSession returns an unconnected Session; with echo set its machines send
// every message back.
func NewSession(echo bool) *Session {
	return transport.New(transport.Config[string, *lenmsg.Machine]{
		NewMachine: func() *lenmsg.Machine { return &lenmsg.Machine{Echo: echo} },
	})
}
