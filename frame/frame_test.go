package frame

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeaderRoundTrip(t *testing.T) {
	cases := []Header{
		{Length: 0, RequestID: 1, StreamID: 1, StreamFlags: StreamFlagBegin, Type: TypeCommandRequest, Flags: FlagCommandRequestNew},
		{Length: 65535, RequestID: 0xfffe, StreamID: 255, StreamFlags: StreamFlagBegin | StreamFlagEnd | StreamFlagEncoded, Type: TypeStreamSettings, Flags: FlagStreamSettingsEOS},
		{Length: MaxPayload, RequestID: 3, StreamID: 2, Type: TypeCommandResponse, Flags: FlagCommandResponseContinuation},
		{Length: 65536, RequestID: 0x1234, StreamID: 7, Type: TypeProgress},
	}
	for _, h := range cases {
		b := AppendHeader(nil, h)
		require.Len(t, b, HeaderSize)
		got, err := ParseHeader(b)
		require.NoError(t, err)
		require.Equal(t, h, got)
	}
}

func TestHeaderLayoutMatchesMercurial(t *testing.T) {
	// makeframe(requestid=0x0201, streamid=3, streamflags=stream-begin,
	// typeid=command-request, flags=new, payload of 0x030201 bytes) header.
	h := Header{Length: 0x030201, RequestID: 0x0201, StreamID: 3, StreamFlags: StreamFlagBegin, Type: TypeCommandRequest, Flags: FlagCommandRequestNew}
	require.Equal(t, []byte{0x01, 0x02, 0x03, 0x01, 0x02, 0x03, 0x01, 0x11}, AppendHeader(nil, h))
}

func TestParseHeaderRejects(t *testing.T) {
	cases := []struct {
		name  string
		last  byte // type<<4 | flags
		sflag byte
		field string
		msg   string
	}{
		{"type zero", 0x00, 0, "type", "frame: invalid frame type 0"},
		{"type four", 0x40, 0, "type", "frame: invalid frame type 4"},
		{"type fifteen", 0xf0, 0, "type", "frame: invalid frame type 15"},
		{"stream flag bit 3", 0x11, 0x08, "stream flags", "frame: invalid stream flags 0x08"},
		{"data flag 0x04", 0x24, 0, "flags", "frame: invalid flags 0x04 for command-data frame"},
		{"text-output flags", 0x61, 0, "flags", "frame: invalid flags 0x01 for text-output frame"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader([]byte{0, 0, 0, 1, 0, 1, tc.sflag, tc.last})
			var he *HeaderError
			require.True(t, errors.As(err, &he), "got %v", err)
			require.Equal(t, tc.field, he.Field)
			require.EqualError(t, err, tc.msg)
		})
	}
}

func TestStringLikeMercurialRepr(t *testing.T) {
	f := Frame{RequestID: 1, StreamID: 1, StreamFlags: StreamFlagBegin | StreamFlagEncoded, Type: TypeCommandRequest,
		Flags: FlagCommandRequestNew | FlagCommandRequestExpectData, Payload: []byte("abcd")}
	require.Equal(t, "frame(size=4; request=1; stream=1; streamflags=stream-begin|encoded; type=command-request; flags=new|have-data)", f.String())
	require.Equal(t, "<unknown 0x04>", Type(4).String())
	require.Equal(t, "eos|<unknown 0x04>", TypeCommandData.FlagsString(0x06))
}

func TestNamesResolve(t *testing.T) {
	for _, name := range []string{"command-request", "command-data", "command-response", "error-response",
		"text-output", "progress", "sender-protocol-settings", "stream-settings"} {
		typ, ok := TypeByName(name)
		require.True(t, ok, name)
		require.Equal(t, name, typ.String())
	}
	f, ok := TypeCommandRequest.FlagByName("have-data")
	require.True(t, ok)
	require.Equal(t, FlagCommandRequestExpectData, f)
	_, ok = TypeErrorResponse.FlagByName("eos")
	require.False(t, ok)
	s, ok := StreamFlagByName("encoded")
	require.True(t, ok)
	require.Equal(t, StreamFlagEncoded, s)
}
