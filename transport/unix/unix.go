//go:build unix

package unix

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
)

// DefaultMode is the permission of socket files created by Listen.
const DefaultMode fs.FileMode = 0o600

// DefaultMaxFDs is the default limit on received descriptors held by a Conn.
const DefaultMaxFDs = 64

// Endpoint is a Unix-domain socket address. It implements transport.Dialer
// and transport.ListenOpener. The zero value is unusable (empty path).
type Endpoint struct {
	// Path is a filesystem path, or "@name" for a Linux abstract socket
	// (no file, gone when the listener closes).
	Path string
	// Mode is the permission given to the socket file by Listen; zero means
	// DefaultMode. Ignored for abstract sockets.
	Mode fs.FileMode
	// MaxFDs limits descriptors received and not yet taken on each Conn;
	// zero means DefaultMaxFDs. Descriptors beyond it are closed.
	MaxFDs int
	// DialFDs makes connections from Dial collect the descriptors the
	// server passes. Connections from Accept always collect them (a QMP
	// server takes getfd's descriptors); dialed ones by default read with
	// plain read(2), which costs less than recvmsg(2), and the kernel
	// closes any descriptor sent to them. Conn.ExpectFDs turns collection
	// on later.
	DialFDs bool
	// ListenNoFDs makes connections from Accept read with plain read(2)
	// too, for a server that takes no descriptors: each read then costs
	// less (about 0.5 µs on Linux), and the kernel closes any descriptor a
	// client sends. Conn.ExpectFDs turns collection on later.
	ListenNoFDs bool
}

func (e Endpoint) abstract() bool { return strings.HasPrefix(e.Path, "@") }

func (e Endpoint) maxFDs() int {
	if e.MaxFDs > 0 {
		return e.MaxFDs
	}
	return DefaultMaxFDs
}

// Dial connects to the socket, honouring ctx, and returns a *Conn.
func (e Endpoint) Dial(ctx context.Context) (net.Conn, error) {
	return e.DialUnix(ctx)
}

// DialUnix is Dial returning the concrete type.
func (e Endpoint) DialUnix(ctx context.Context) (*Conn, error) {
	if e.Path == "" {
		return nil, errors.New("unix: dial: empty socket path")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", e.Path)
	if err != nil {
		return nil, err
	}
	return newConn(c.(*net.UnixConn), e.maxFDs(), e.DialFDs), nil
}

// ErrInUse is returned by Listen when a server is already listening on the
// path.
var ErrInUse = errors.New("a server is already listening on the socket")

// Listen opens a listening socket at the endpoint and returns a *Listener.
// An existing socket file is removed only if nothing listens on it (a dial
// is refused); a file that is not a socket is never removed. The socket
// file gets Mode (default 0600) and is removed when the listener closes.
func (e Endpoint) Listen(ctx context.Context) (net.Listener, error) {
	return e.ListenUnix(ctx)
}

// ListenUnix is Listen returning the concrete type.
func (e Endpoint) ListenUnix(ctx context.Context) (*Listener, error) {
	if e.Path == "" {
		return nil, errors.New("unix: listen: empty socket path")
	}
	if !e.abstract() {
		if err := removeStale(ctx, e.Path); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", e.Path)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	if !e.abstract() {
		mode := e.Mode
		if mode == 0 {
			mode = DefaultMode
		}
		// bind(2) created the file with the umask's permissions; a socket
		// needs write permission to be connected to, so with the usual
		// umask (022) nobody else could connect in between.
		if err := os.Chmod(e.Path, mode); err != nil {
			ul.Close()
			return nil, fmt.Errorf("unix: listen: set socket permissions: %w", err)
		}
	}
	return &Listener{ul: ul, maxFDs: e.maxFDs(), collectFDs: !e.ListenNoFDs}, nil
}

// removeStale removes path if it is a socket nobody listens on.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unix: listen: %w", err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("unix: listen: %s exists and is not a socket", path)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("unix: listen %s: %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// Not provably stale (permissions, cancellation): leave it.
		return fmt.Errorf("unix: listen: probing existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unix: listen: removing stale socket: %w", err)
	}
	return nil
}

// Listener accepts Unix-domain connections as *Conn values.
type Listener struct {
	ul         *net.UnixListener
	maxFDs     int
	collectFDs bool // accepted connections read with recvmsg(2) (not Endpoint.ListenNoFDs)
}

// Accept implements net.Listener; the connection is a *Conn.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptUnix() }

// AcceptUnix is Accept returning the concrete type.
func (l *Listener) AcceptUnix() (*Conn, error) {
	c, err := l.ul.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return newConn(c, l.maxFDs, l.collectFDs), nil
}

// Close stops listening and removes the socket file.
func (l *Listener) Close() error { return l.ul.Close() }

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ul.Addr() }
