package transport

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
)

func TestNextReadBuffer(t *testing.T) {
	tests := []struct {
		name        string
		cur, n, max int
		want        int
	}{
		{"partial read keeps the size", 4096, 4095, 65536, 4096},
		{"full read doubles", 4096, 4096, 65536, 8192},
		{"doubling stops at the limit", 32768, 32768, 65536, 65536},
		{"at the limit stays", 65536, 65536, 65536, 65536},
		{"limit not a power of two", 8192, 8192, 10000, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, nextReadBuffer(tt.cur, tt.n, tt.max))
		})
	}
}

// TestReadBufferStartsSmallAndGrows drives a session over net.Pipe, where
// one Read returns at most what fits in the buffer, and checks the read
// loop's buffer size after the peer wrote.
func TestReadBufferStartsSmallAndGrows(t *testing.T) {
	defer goleak.VerifyNone(t)
	msg := func(size int) []byte { return lenmsg.Append(nil, bytes.Repeat([]byte{'x'}, size)) }
	tests := []struct {
		name    string
		limit   int      // Config.ReadBufferSize
		writes  [][]byte // what the peer writes, one Write each
		initial int
		final   int
	}{
		{"idle", 0, nil, 4 << 10, 4 << 10},
		{"small messages", 0, [][]byte{msg(100), msg(3000), msg(4000)}, 4 << 10, 4 << 10},
		{"bulk input grows to the default", 0, [][]byte{msg(1 << 20)}, 4 << 10, DefaultReadBufferSize},
		{"bulk input grows to a small limit", 10000, [][]byte{msg(1 << 20)}, 4 << 10, 10000},
		{"limit below the initial size", 1024, [][]byte{msg(1 << 20)}, 1024, 1024},
		{"grows once per filled read", 0, [][]byte{msg(4096 - 4), msg(8192 - 4)}, 4 << 10, 16 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s := New(Config[string, *lenmsg.Machine]{
				Logger:         slog.New(slog.DiscardHandler),
				ReadBufferSize: tt.limit,
				NewMachine:     func() *lenmsg.Machine { return &lenmsg.Machine{Discard: true} },
			})
			a, b := net.Pipe()
			defer b.Close()
			require.NoError(t, s.Start(ctx, a))
			require.Equal(t, tt.initial, readBufSize(s))
			total := 0
			for _, w := range tt.writes {
				_, err := b.Write(w)
				require.NoError(t, err)
				total += len(w) - 4
			}
			// Do runs after the machine saw every byte the peer wrote:
			// the last Write returned once they were read.
			require.Eventually(t, func() bool {
				var got int
				require.NoError(t, s.Do(ctx, func(m *lenmsg.Machine) error { got = m.Bytes; return nil }))
				return got == total
			}, 10*time.Second, time.Millisecond)
			require.Equal(t, tt.final, readBufSize(s))
			require.NoError(t, s.Disconnect(ctx))
		})
	}
}

func readBufSize(s *Session[string, *lenmsg.Machine]) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.readBufSize
}
