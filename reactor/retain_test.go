package reactor

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/frame"
	"github.com/wirereactor/wirereactor/hgcbor"
)

// TestClientReactorRetainCopiesData feeds response frames from a buffer
// that is then overwritten, as a driver's read buffer is, and checks that
// retained values keep their bytes while unretained ones change.
func TestClientReactorRetainCopiesData(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		want  Response
	}{
		{"data", "1 2 stream-begin command-response continuation some response bytes",
			Response{RequestID: 1, Kind: ResponseKindData, Data: []byte("some response bytes"), More: true}},
		{"empty eos", "1 2 stream-begin command-response eos ",
			Response{RequestID: 1, Kind: ResponseKindData, Data: []byte{}, EOS: true}},
		{"progress", "1 2 stream-begin progress 0 cbor:{b'topic': b'x'}",
			Response{RequestID: 1, Kind: ResponseKindProgress, Data: frame.MustParseHuman("1 2 0 progress 0 cbor:{b'topic': b'x'}").Payload}},
		{"error", "1 2 stream-begin error-response 0 cbor:{b'type': b'server', b'message': [{b'msg': b'boom'}]}",
			Response{RequestID: 1, Kind: ResponseKindError, Error: &ErrorResponse{Type: "server",
				Message: []any{map[any]any{hgcbor.Bytes("msg"): []byte("boom")}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClientMachine(ClientMachineConfig{MultipleSends: true, Immediate: true})
			_, err := c.CallCommand(Request{Name: "foo"})
			require.NoError(t, err)
			require.Equal(t, action.KindSend, c.Next().Kind)
			require.Equal(t, action.KindWantMore, c.Next().Kind)

			f := frame.MustParseHuman(tc.frame)
			buf := f.Append(nil)
			c.Feed(buf)
			a := c.Next()
			require.Equal(t, action.KindDeliver, a.Kind, "%v", a)
			kept := c.Retain(a.Value)
			require.Equal(t, action.KindWantMore, c.Next().Kind)

			for i := range buf {
				buf[i] = 'X'
			}
			require.Equal(t, tc.want, kept)
			if len(tc.want.Data) > 0 {
				require.NotEqual(t, tc.want.Data, a.Value.Data, "the test must overwrite the aliased bytes")
			}
		})
	}
}

func TestClientReactorRetainKeepsNilData(t *testing.T) {
	var c ClientMachine
	r := c.Retain(Response{RequestID: 3, Kind: ResponseKindError, Error: &ErrorResponse{Type: "x"}})
	require.Nil(t, r.Data)
	require.Equal(t, Response{RequestID: 3, Kind: ResponseKindError, Error: &ErrorResponse{Type: "x"}}, r)
}
