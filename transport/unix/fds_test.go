//go:build linux

package unix_test

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/internal/transporttest"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// passOne sends one byte with a descriptor from `from` and reads it at `to`,
// returning the descriptors `to` collected.
func passOne(t *testing.T, from, to *unix.Conn, f *os.File) []*os.File {
	t.Helper()
	_, err := from.WriteFDs([]byte("x"), f)
	require.NoError(t, err)
	_, err = io.ReadFull(to, make([]byte, 1))
	require.NoError(t, err)
	return to.TakeFDs()
}

// A connection that reads with read(2) — dialed ones by default, accepted
// ones with ListenNoFDs — has the kernel close a descriptor sent to it
// (none leaks) until ExpectFDs; one sent after is collected. Accepted
// connections otherwise collect from the start.
func TestPlainReadsCollectDescriptorsOnlyWhenExpected(t *testing.T) {
	for _, side := range []string{"dialed", "accepted with ListenNoFDs"} {
		t.Run(side, func(t *testing.T) {
			transporttest.LeakCheck(t)
			r, w, err := os.Pipe()
			require.NoError(t, err)
			defer r.Close()
			defer w.Close()
			before := openFDs(t)
			func() {
				ep := unix.Endpoint{Path: sockPath(t), ListenNoFDs: side != "dialed"}
				dialed, accepted := pair(t, ep)
				plain, other := dialed, accepted
				if side != "dialed" {
					plain, other = accepted, dialed
				}
				require.Empty(t, passOne(t, other, plain, r))
				require.Equal(t, before+2, openFDs(t), "the descriptor sent to a plain read is closed")

				plain.ExpectFDs()
				files := passOne(t, other, plain, r)
				require.Len(t, files, 1)
				files[0].Close()

				if side == "dialed" {
					files = passOne(t, dialed, accepted, r)
					require.Len(t, files, 1, "accepted connections collect by default")
					files[0].Close()
				}
				dialed.Close()
				accepted.Close()
			}()
			require.Equal(t, before, openFDs(t), "no descriptor leaked")
		})
	}
}

func TestDialFDs(t *testing.T) {
	transporttest.LeakCheck(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	dialed, accepted := pair(t, unix.Endpoint{Path: sockPath(t), DialFDs: true})
	files := passOne(t, accepted, dialed, r)
	require.Len(t, files, 1)
	files[0].Close()
}
