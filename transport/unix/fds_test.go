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

// A dialed connection reads with read(2) until descriptors are expected: a
// descriptor sent before is closed by the kernel (none leaks), one sent
// after ExpectFDs is collected. Accepted connections collect from the start.
func TestDialedConnCollectsDescriptorsOnlyWhenExpected(t *testing.T) {
	transporttest.LeakCheck(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	before := openFDs(t)
	func() {
		dialed, accepted := pair(t, unix.Endpoint{Path: sockPath(t)})
		require.Empty(t, passOne(t, accepted, dialed, r))
		require.Equal(t, before+2, openFDs(t), "the descriptor sent to a plain read is closed")

		dialed.ExpectFDs()
		files := passOne(t, accepted, dialed, r)
		require.Len(t, files, 1)
		files[0].Close()

		files = passOne(t, dialed, accepted, r)
		require.Len(t, files, 1)
		files[0].Close()
		dialed.Close()
		accepted.Close()
	}()
	require.Equal(t, before, openFDs(t), "no descriptor leaked")
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

// With ListenNoFDs, accepted connections read with read(2) too: a
// descriptor a client sends is closed by the kernel, until ExpectFDs.
func TestListenNoFDs(t *testing.T) {
	transporttest.LeakCheck(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	before := openFDs(t)
	func() {
		dialed, accepted := pair(t, unix.Endpoint{Path: sockPath(t), ListenNoFDs: true})
		require.Empty(t, passOne(t, dialed, accepted, r))
		require.Equal(t, before+2, openFDs(t), "the descriptor sent to a plain read is closed")
		accepted.ExpectFDs()
		files := passOne(t, dialed, accepted, r)
		require.Len(t, files, 1)
		files[0].Close()
		dialed.Close()
		accepted.Close()
	}()
	require.Equal(t, before, openFDs(t), "no descriptor leaked")
}
