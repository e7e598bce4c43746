package endpoint_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
	"github.com/wirereactor/wirereactor/transport/ws"
)

func TestParse(t *testing.T) {
	for addr, want := range map[string]endpoint.Endpoint{
		"unix:/run/qmp.sock":  unix.Endpoint{Path: "/run/qmp.sock"},
		"/run/qmp.sock":       unix.Endpoint{Path: "/run/qmp.sock"},
		"unix:@abstract":      unix.Endpoint{Path: "@abstract"},
		"tcp:127.0.0.1:4444":  tcp.Endpoint{Address: "127.0.0.1:4444"},
		"ws://host:80/vm/1":   ws.Endpoint{URL: "ws://host:80/vm/1"},
		"wss://host:443/vm/1": ws.Endpoint{URL: "wss://host:443/vm/1"},
	} {
		got, err := endpoint.Parse(addr)
		require.NoError(t, err, addr)
		require.Equal(t, want, got, addr)
	}
	for _, addr := range []string{"", "qmp.sock", "udp:1.2.3.4:5", "http://host/"} {
		_, err := endpoint.Parse(addr)
		var ae *endpoint.AddressError
		require.True(t, errors.As(err, &ae), "%q: %v", addr, err)
		require.Equal(t, addr, ae.Addr)
		_, err = endpoint.ParseListen(addr)
		require.ErrorAs(t, err, &ae)
	}
}

func TestParseListenListens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{"unix:" + filepath.Join(t.TempDir(), "s"), "tcp:127.0.0.1:0"} {
		lo, err := endpoint.ParseListen(addr)
		require.NoError(t, err)
		ln, err := lo.Listen(ctx)
		require.NoError(t, err, addr)
		require.NoError(t, ln.Close())
	}
}

// FuzzParse: any string parses to one of the three endpoints or to an
// *AddressError naming it; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"unix:/a", "/a", "tcp:h:1", "ws://h/p", "wss://h/p", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		e, err := endpoint.Parse(addr)
		if err != nil {
			var ae *endpoint.AddressError
			if !errors.As(err, &ae) || ae.Addr != addr || e != nil {
				t.Fatalf("Parse(%q) = %v, %v", addr, e, err)
			}
			return
		}
		switch e.(type) {
		case unix.Endpoint, tcp.Endpoint, ws.Endpoint:
		default:
			t.Fatalf("Parse(%q) = %T", addr, e)
		}
	})
}
