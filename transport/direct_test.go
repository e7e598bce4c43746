package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/internal/lenmsg"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
)

// socketPair returns a connected (session side, peer side) pair of a real
// socket type, whose session side the Session writes to directly.
type socketPair func(t *testing.T) (net.Conn, net.Conn)

func testSocketPairs() map[string]socketPair {
	accept := func(t *testing.T, ln net.Listener, dial func() (net.Conn, error)) (net.Conn, net.Conn) {
		t.Helper()
		defer ln.Close()
		ch := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			ch <- c
		}()
		c, err := dial()
		require.NoError(t, err)
		p := <-ch
		require.NotNil(t, p)
		t.Cleanup(func() { c.Close(); p.Close() })
		return c, p
	}
	return map[string]socketPair{
		"unix": func(t *testing.T) (net.Conn, net.Conn) {
			ep := unix.Endpoint{Path: filepath.Join(t.TempDir(), "s")}
			ln, err := ep.Listen(testCtx(t))
			require.NoError(t, err)
			c, p := accept(t, ln, func() (net.Conn, error) { return ep.Dial(testCtx(t)) })
			require.IsType(t, &unix.Conn{}, c)
			require.NoError(t, c.(*unix.Conn).UnixConn().SetWriteBuffer(8<<10))
			require.NoError(t, p.(*unix.Conn).UnixConn().SetReadBuffer(8<<10))
			return c, p
		},
		"tcp": func(t *testing.T) (net.Conn, net.Conn) {
			ln, err := tcp.Endpoint{Address: "127.0.0.1:0"}.Listen(testCtx(t))
			require.NoError(t, err)
			c, p := accept(t, ln, func() (net.Conn, error) {
				return tcp.Endpoint{Address: ln.Addr().String()}.Dial(testCtx(t))
			})
			require.IsType(t, &net.TCPConn{}, c)
			// Only the sender's buffer: a receive buffer below the loopback
			// MSS can stall TCP itself.
			require.NoError(t, c.(*net.TCPConn).SetWriteBuffer(16<<10))
			return c, p
		},
	}
}

// orderedPayload encodes (writer, seq) and pads to size with a byte that
// depends on both, so that a torn or misplaced message is detected.
func orderedPayload(writer, seq, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint32(p, uint32(writer))
	binary.BigEndian.PutUint32(p[4:], uint32(seq))
	for i := 8; i < len(p); i++ {
		p[i] = byte(writer*31 + seq + i)
	}
	return p
}

// TestSessionDirectWritesKeepOrder has several goroutines send small
// messages (written from the caller when the write loop is idle) and large
// ones (left to the write loop), and Exec writes, into small socket buffers
// read by a peer that sometimes stalls, so that direct writes are partial
// or refused and the write loop takes over. Every message must arrive
// whole and in each writer's order.
func TestSessionDirectWritesKeepOrder(t *testing.T) {
	for name, pair := range testSocketPairs() {
		t.Run(name, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)
			c, peer := pair(t)
			s := newSession(cfg{MaxPendingOutput: 32 << 10})
			require.NoError(t, s.Start(ctx, c))

			const writers, perWriter = 4, 150
			sizes := []int{8, 100, 5000, 40 << 10, 3, 9000, 15 << 10}
			got := make(chan error, 1)
			go func() {
				next := make([]int, writers+1)
				for n := 0; n < (writers+1)*perWriter; n++ {
					if n%100 == 0 {
						// Let the buffers fill, so that direct writes are
						// partial or refused.
						time.Sleep(20 * time.Millisecond)
					}
					msg, err := readMsg(peer)
					if err != nil {
						got <- fmt.Errorf("message %d: %w", n, err)
						return
					}
					w := int(binary.BigEndian.Uint32([]byte(msg)))
					if w > writers {
						got <- fmt.Errorf("message %d: writer %d", n, w)
						return
					}
					want := orderedPayload(w, next[w], len(msg))
					if msg != string(want) {
						got <- fmt.Errorf("message %d: writer %d expected seq %d, got another or torn message", n, w, next[w])
						return
					}
					next[w]++
				}
				got <- nil
			}()

			var wg sync.WaitGroup
			errs := make(chan error, writers+1)
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						p := orderedPayload(w, i, sizes[(w+i)%len(sizes)])
						if err := s.Do(ctx, func(m *lenmsg.Machine) error { return m.SendRef(p) }); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Go(func() { // the Exec writer: out-of-band writes keep their place
				for i := range perWriter {
					wire := lenmsg.Append(nil, orderedPayload(writers, i, sizes[i%len(sizes)]))
					if err := s.Exec(ctx, func(nc net.Conn) error { _, err := nc.Write(wire); return err }); err != nil {
						errs <- err
						return
					}
				}
			})
			peer.SetReadDeadline(time.Now().Add(15 * time.Second))
			require.NoError(t, <-got)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, s.Disconnect(ctx))
		})
	}
}

// TestSessionDirectWritesBackpressure checks that direct writes do not
// bypass the output limit: against a peer that never reads, Do blocks once
// the kernel's buffers and MaxPendingOutput are full, and everything
// accepted arrives intact once the peer reads.
func TestSessionDirectWritesBackpressure(t *testing.T) {
	for name, pair := range testSocketPairs() {
		t.Run(name, func(t *testing.T) {
			leakCheck(t)
			ctx := testCtx(t)

			// What the kernel holds between a writer and a peer that does
			// not read, for this socket type and these buffer sizes.
			rc, rp := pair(t)
			kernel := 0
			chunk := make([]byte, 1024)
			for {
				rc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := rc.Write(chunk)
				kernel += n
				if err != nil {
					require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout(err)))
					break
				}
			}
			rc.Close()
			rp.Close()

			const limit, size = 16 << 10, 6 << 10
			c, peer := pair(t)
			s := newSession(cfg{MaxPendingOutput: limit})
			require.NoError(t, s.Start(ctx, c))
			accepted := 0
			var err error
			for err == nil {
				short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				p := orderedPayload(0, accepted, size)
				// A Do that times out waiting for room has queued its
				// message all the same.
				err = s.Do(short, func(m *lenmsg.Machine) error { accepted++; return m.SendRef(p) })
				cancel()
				require.Less(t, accepted, 1000, "Do never blocked")
			}
			require.ErrorIs(t, err, context.DeadlineExceeded)
			// Kernel buffers (which may grow a little as the peer's window
			// opens), the limit, one message past it, one being written.
			require.LessOrEqual(t, accepted*(size+4), 2*kernel+limit+2*(size+4))

			for i := range accepted {
				msg, err := readMsg(peer)
				require.NoError(t, err)
				require.Equal(t, string(orderedPayload(0, i, size)), msg)
			}
			require.NoError(t, s.Disconnect(ctx))
			peer.SetReadDeadline(time.Now().Add(time.Second))
			_, err = readMsg(peer)
			require.ErrorIs(t, err, io.EOF, "only the accepted messages were sent")
		})
	}
}

// errTimeout returns err itself when it is a net timeout, so that
// errors.Is(err, errTimeout(err)) accepts any timeout error.
func errTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return errors.New("not a timeout")
}

var _ = transport.RunstateRunning
