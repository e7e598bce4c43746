package main

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/wirereactor/wirereactor/transcript"
	"github.com/wirereactor/wirereactor/transport"
)

// recordDialer returns d with every connection it makes recorded in a new
// transcript at path, one QMP message per line, and a function that ends
// the recording (after the session ended) and reports any error writing
// it.
func recordDialer(d transport.Dialer, path, addr string) (transport.Dialer, func() error, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // sessions may carry secrets
	if err != nil {
		return nil, nil, err
	}
	if addr == "" {
		addr = "the built-in simulator"
	}
	rec, err := transcript.NewRecorder(f, transcript.RecorderConfig{SplitJSON: true,
		Header: transcript.Header{Protocol: "qmp", Note: "recorded by qmp-shell from " + addr}})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	rd := transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
		nc, err := d.Dial(ctx)
		if err != nil {
			return nil, err
		}
		return transcript.RecordConn(nc, rec), nil
	})
	finish := func() error { return errors.Join(rec.Err(), f.Close()) }
	return rd, finish, nil
}
