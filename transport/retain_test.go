package transport_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/reactor"
	"github.com/wirereactor/wirereactor/transport"
)

// plainClient drives a ClientMachine but hides its Retain method: a machine
// that does not implement action.Retainer.
type plainClient struct{ r *reactor.ClientMachine }

func (c plainClient) Feed(p []byte)                            { c.r.Feed(p) }
func (c plainClient) FeedEOF()                                 { c.r.FeedEOF() }
func (c plainClient) Next() action.Action[reactor.Response]    { return c.r.Next() }
func (c plainClient) call(req reactor.Request) (uint16, error) { return c.r.CallCommand(req) }

var _ action.Retainer[reactor.Response] = (*reactor.ClientMachine)(nil)

// responseFrames are command-response frames for request 1, one per chunk,
// each of the same size so that every read lands at the start of the read
// buffer and overwrites the previous frame's bytes.
func responseFrames(n int) (frames []frame.Frame, chunks []string) {
	for i := range n {
		chunk := fmt.Sprintf("chunk %02d of the response", i)
		sflags, flags := "0", "continuation"
		if i == 0 {
			sflags = "stream-begin"
		}
		if i == n-1 {
			flags = "eos"
		}
		frames = append(frames, frame.MustParseHuman(fmt.Sprintf("1 2 %s command-response %s %s", sflags, flags, chunk)))
		chunks = append(chunks, chunk)
	}
	return frames, chunks
}

// serveResponses reads the client's request from peer, then writes every
// frame in its own Write: over net.Pipe, each is then one Read by the
// session, into the same read buffer.
func serveResponses(t *testing.T, peer net.Conn, frames []frame.Frame) {
	t.Helper()
	var hdr [frame.HeaderSize]byte
	_, err := peer.Read(hdr[:])
	require.NoError(t, err)
	h, err := frame.ParseHeader(hdr[:])
	require.NoError(t, err)
	require.Equal(t, frame.TypeCommandRequest, h.Type)
	_, err = peer.Read(make([]byte, h.Length))
	require.NoError(t, err)
	for _, f := range frames {
		_, err := peer.Write(f.Append(nil))
		require.NoError(t, err)
	}
}

// runResponses drives one request over net.Pipe and returns the Data of
// every delivered Response, read only after the last frame was read, so
// that any Data still aliasing the read buffer shows the last frame's bytes.
func runResponses[M action.Machine[reactor.Response]](t *testing.T, c transport.Config[reactor.Response, M], call func(M) error, n int, consume bool) []string {
	leakCheck(t)
	ctx := testCtx(t)
	var (
		mu       sync.Mutex
		consumed []reactor.Response
	)
	if consume {
		c.Consume = func(r reactor.Response) {
			mu.Lock()
			consumed = append(consumed, r)
			mu.Unlock()
		}
	}
	c.Logger = quiet
	s := transport.New(c)
	a, b := net.Pipe()
	require.NoError(t, s.Start(ctx, a))
	defer func() {
		b.Close()
		_ = s.Disconnect(ctx)
	}()

	require.NoError(t, s.Do(ctx, call))
	frames, _ := responseFrames(n)
	serveResponses(t, b, frames)

	var got []reactor.Response
	if consume {
		// Consume runs on the read loop: wait until it saw every frame.
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(consumed) == n
		}, 10*time.Second, time.Millisecond)
		mu.Lock()
		got = consumed
		mu.Unlock()
	} else {
		for range n {
			r, err := s.Recv(ctx)
			require.NoError(t, err)
			got = append(got, r)
		}
	}
	data := make([]string, len(got))
	for i, r := range got {
		require.Equal(t, uint16(1), r.RequestID)
		data[i] = string(r.Data)
	}
	return data
}

func callFoo(m *reactor.ClientMachine) error {
	_, err := m.CallCommand(reactor.Request{Name: "foo"})
	return err
}

func newClientReactor() *reactor.ClientMachine {
	return reactor.NewClientMachine(reactor.ClientMachineConfig{MultipleSends: true, Immediate: true})
}

// TestSessionRetainsMachineValues checks that a machine implementing
// action.Retainer gets its values retained without configuration, that
// Config.Retain overrides it, and both for Recv and for Consume.
func TestSessionRetainsMachineValues(t *testing.T) {
	const n = 8
	_, chunks := responseFrames(n)
	var retained int
	cases := []struct {
		name    string
		retain  func(reactor.Response) reactor.Response
		consume bool
		intact  bool // every Data reads as sent; else only the last one does
		calls   int  // calls of Config.Retain
	}{
		{name: "machine Retain, Recv", intact: true},
		{name: "machine Retain, Consume", consume: true, intact: true},
		{name: "Config.Retain copying", intact: true, calls: n,
			retain: func(r reactor.Response) reactor.Response {
				retained++
				r.Data = append([]byte(nil), r.Data...)
				return r
			}},
		// An identity Retain wins over the machine's: nothing is copied,
		// and the queued values show the reused read buffer.
		{name: "Config.Retain identity", intact: false, calls: n,
			retain: func(r reactor.Response) reactor.Response { retained++; return r }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			retained = 0
			data := runResponses(t, transport.Config[reactor.Response, *reactor.ClientMachine]{
				NewMachine: newClientReactor,
				Retain:     tc.retain,
			}, callFoo, n, tc.consume)
			require.Equal(t, tc.calls, retained)
			if tc.intact {
				require.Equal(t, chunks, data)
				return
			}
			requireAliased(t, chunks, data)
		})
	}
}

// TestSessionWithoutRetainerCopiesNothing checks that a machine without a
// Retain method gets its values passed on as they are: the session adds no
// copy of its own.
func TestSessionWithoutRetainerCopiesNothing(t *testing.T) {
	const n = 8
	_, chunks := responseFrames(n)
	data := runResponses(t, transport.Config[reactor.Response, plainClient]{
		NewMachine: func() plainClient { return plainClient{newClientReactor()} },
	}, func(m plainClient) error {
		_, err := m.call(reactor.Request{Name: "foo"})
		return err
	}, n, false)
	requireAliased(t, chunks, data)
}

// requireAliased checks that every Data reads as the last chunk, the bytes
// left in the reused read buffer.
func requireAliased(t *testing.T, chunks, data []string) {
	t.Helper()
	require.Len(t, data, len(chunks))
	for i := range data {
		require.Equal(t, chunks[len(chunks)-1], data[i], "value %d", i)
	}
}
