package qmpclient

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// connectToFake connects a client to a qmptest server, both ended (and
// goroutine leaks checked) when the test ends, and returns it with a
// context for the test.
func connectToFake(t *testing.T) (context.Context, *Client) {
	t.Helper()
	running := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, running) }) // after the server's cleanup
	s := qmptest.StartUnix(t, qmptest.Config{})
	c := NewClient(Config{Name: t.Name()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, c.Connect(ctx, s.Addr()))
	t.Cleanup(func() { _ = c.Disconnect(ctx) })
	return ctx, c
}

// Routing a reply corks the session until its caller has it (see consume).
// A caller that gives up after its reply was routed, or a command withdrawn
// after a reply took it (a server that guessed its id), must still end
// that Cork: a Cork left in would hold every later command back, and the
// next Execute would never be sent.
func TestRoutedReplyCorkEnds(t *testing.T) {
	for name, end := range map[string]func(c *Client, id uint64, cl *call){
		"caller gave up":    (*Client).giveUp,
		"command withdrawn": (*Client).withdraw,
	} {
		t.Run(name, func(t *testing.T) {
			ctx, c := connectToFake(t)

			// A call in flight, and its reply routed by the reader.
			const id = 1 << 40
			cl := callPool.Get().(*call)
			c.mu.Lock()
			c.calls[id] = cl
			c.mu.Unlock()
			c.consume(qmp.Received{Kind: qmp.ReceivedKindReply, ID: id,
				Response: qmp.Response{Return: json.RawMessage(`{}`)}})
			require.True(t, cl.corked)

			end(c, id, cl)
			require.False(t, cl.corked)
			short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
			defer cancelShort()
			_, err := c.Execute(short, "query-status", nil)
			require.NoError(t, err, "the next command was held back")
		})
	}
}

// Many callers, some of whose contexts end while their command is in
// flight (so that some give up after their reply was routed): every Cork
// ends, and a command sent afterwards goes out and is answered.
func TestCorksEndWhileCallersGiveUp(t *testing.T) {
	ctx, c := connectToFake(t)

	const workers, each = 8, 200
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				cctx, ccancel := context.WithCancel(ctx)
				if (w+i)%4 == 0 {
					// Ends around the time the reply comes.
					time.AfterFunc(time.Duration(i%50)*time.Microsecond, ccancel)
				}
				_, err := c.Execute(cctx, "query-status", nil)
				ccancel()
				if err != nil && cctx.Err() == nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	_, err := c.Execute(short, "query-status", nil)
	require.NoError(t, err, "a Cork was left in")
}
