package reactor

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
)

// A clean end of input is a terminal Error with io.EOF once the reactor has
// nothing left to do, so a loop calling Next until WantMore or Error ends;
// input that ends early is an Error matching io.ErrUnexpectedEOF.
func TestServerReactorEndsCleanly(t *testing.T) {
	t.Run("nothing at all", func(t *testing.T) {
		r := NewServerMachine(ServerMachineConfig{})
		r.FeedEOF()
		require.Equal(t, action.Fail[Command](io.EOF), r.Next())
		require.Equal(t, action.Fail[Command](io.EOF), r.Next(), "terminal")
	})
	t.Run("after its answer, by bytes", func(t *testing.T) {
		r := NewServerMachine(ServerMachineConfig{})
		req := frameBytes("1 1 stream-begin command-request new cbor:{b'name': b'heads'}")
		got := actiontest.Feed(r, req, actiontest.ThenEOF())
		require.Len(t, got.Delivered(), 1)
		require.NoError(t, got.Err(), "a request awaits its answer: the reactor waits")
		require.NoError(t, r.RespondObjects(r.NewOutputStream(), 1, []byte("x")))
		got = actiontest.Drain(r)
		require.NotEmpty(t, got.Sent(), "the answer goes out first")
		require.Equal(t, io.EOF, got.Err())
	})
	t.Run("a partial request", func(t *testing.T) {
		r := NewServerMachine(ServerMachineConfig{})
		r.OnFrame(ffs("1 1 stream-begin command-request new|more cbor:{b'name': b'a'}"))
		r.FeedEOF()
		got := actiontest.Drain(r)
		require.ErrorIs(t, got.Err(), ErrIncomplete)
		require.ErrorIs(t, got.Err(), io.ErrUnexpectedEOF)
		require.NotErrorIs(t, got.Err(), io.EOF)
	})
	t.Run("a partial frame", func(t *testing.T) {
		req := frameBytes("1 1 stream-begin command-request new cbor:{b'name': b'heads'}")
		got := actiontest.Feed(NewServerMachine(ServerMachineConfig{}), req[:len(req)-1], actiontest.ThenEOF())
		require.ErrorIs(t, got.Err(), io.ErrUnexpectedEOF)
		require.NotErrorIs(t, got.Err(), io.EOF)
	})
}

func TestClientReactorEndsCleanly(t *testing.T) {
	t.Run("no request", func(t *testing.T) {
		c := NewClientMachine(ClientMachineConfig{})
		c.FeedEOF()
		require.Equal(t, action.Fail[Response](io.EOF), c.Next())
		require.Equal(t, action.Fail[Response](io.EOF), c.Next(), "terminal")
	})
	t.Run("every request answered, by bytes", func(t *testing.T) {
		c := NewClientMachine(ClientMachineConfig{MultipleSends: true, Immediate: true})
		_, err := c.CallCommand(Request{Name: "heads"})
		require.NoError(t, err)
		actiontest.Drain(c)
		got := actiontest.Feed(c, frameBytes("1 2 stream-begin command-response eos cbor:{b'status': b'ok'}"), actiontest.ThenEOF())
		require.NotEmpty(t, got.Delivered())
		require.Equal(t, io.EOF, got.Err())
	})
	t.Run("a request unanswered", func(t *testing.T) {
		c := NewClientMachine(ClientMachineConfig{MultipleSends: true, Immediate: true})
		_, err := c.CallCommand(Request{Name: "heads"})
		require.NoError(t, err)
		actiontest.Drain(c)
		c.FeedEOF()
		got := actiontest.Drain(c)
		require.ErrorIs(t, got.Err(), ErrIncomplete)
		require.ErrorIs(t, got.Err(), io.ErrUnexpectedEOF)
		require.NotErrorIs(t, got.Err(), io.EOF)
	})
}
