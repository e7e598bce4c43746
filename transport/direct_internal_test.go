//go:build linux

package transport

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/unix"
)

func TestNewDirectWriterOnlyForStreamsThatCanTry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer ln.Close()
	uc, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	require.NoError(t, err)
	defer uc.Close()
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	type wrapped struct{ *net.UnixConn } // may override Write: never bypassed

	tests := []struct {
		name string
		nc   net.Conn
		want bool
	}{
		{"unix socket", uc, true},
		{"unix.Conn (a TryWriter)", unix.NewConn(uc, 0), true},
		{"wrapper embedding a socket", wrapped{uc}, false},
		{"pipe", p1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, newDirectWriter(tt.nc) != nil)
		})
	}
}
