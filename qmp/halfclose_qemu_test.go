package qmp

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// halfCloseBatch sends caps, n commands and half a command in one write,
// half-closes, and returns everything the server wrote before closing.
func halfCloseBatch(t *testing.T, nc net.Conn, caps string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(caps)
	for i := range n {
		fmt.Fprintf(&b, `{"execute": "query-status", "id": %d}`, i+1)
	}
	b.WriteString(`{"execute": "query-sta`) // partial
	_, err := nc.Write([]byte(b.String()))
	require.NoError(t, err)
	type closeWriter interface{ CloseWrite() error }
	require.NoError(t, nc.(closeWriter).CloseWrite())
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(20*time.Second)))
	out, err := io.ReadAll(nc)
	require.NoError(t, err)
	return string(out)
}

func TestQEMUAnswersEveryCommandBeforeHalfClose(t *testing.T) {
	// What `nc -N` does: send, shut down the write side, read to the end.
	// Without oob QEMU reads the next command only after answering the
	// last, so it answers every complete one (and drops the partial one
	// at the end). With oob it reads up to 8 commands ahead and drops
	// those still queued at the end of stream; qmptest answers them all
	// (TestHalfCloseAnswersEveryCommand in qmptest).
	const n = 50
	for _, tc := range []struct {
		name, caps string
		atLeast    int
	}{
		{"no-oob", `{"execute": "qmp_capabilities"}`, 1 + n},
		{"oob", `{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}`, 1 + n - 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				conn := startQEMU(t)
				out := halfCloseBatch(t, conn, tc.caps, n)
				got := strings.Count(out, `"return"`)
				require.GreaterOrEqual(t, got, tc.atLeast, out)
				require.LessOrEqual(t, got, 1+n)
				require.NotContains(t, out, `"error"`, "the partial command is dropped silently")
			}
		})
	}
}
