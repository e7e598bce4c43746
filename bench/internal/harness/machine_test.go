package harness

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/frame"
)

// The benchmarks' frame machine follows the machine rule: a clean end of
// input is a terminal io.EOF, an end inside a frame an unexpected EOF.
func TestFrameMachineEndsCleanly(t *testing.T) {
	f := frame.MustParseHuman("1 1 stream-begin command-data eos abc")
	wire := f.Append(nil)
	got := actiontest.Feed(&frameMachine{echo: true}, wire, actiontest.OneByte(), actiontest.ThenEOF())
	require.Equal(t, wire, got.Sent())
	require.Equal(t, io.EOF, got.Err())
	got = actiontest.Feed(&frameMachine{}, wire[:5], actiontest.ThenEOF())
	require.ErrorIs(t, got.Err(), io.ErrUnexpectedEOF)
}
