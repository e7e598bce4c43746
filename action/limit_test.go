package action_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
)

func TestLimitError(t *testing.T) {
	err := fmt.Errorf("framing: %w", &action.LimitError{What: "json message bytes", Size: 11, Limit: 10})
	require.EqualError(t, err, "framing: json message bytes: 11 exceeds the limit of 10")
	require.ErrorIs(t, err, action.ErrLimit)
	var le *action.LimitError
	require.True(t, errors.As(err, &le))
	require.Equal(t, action.LimitError{What: "json message bytes", Size: 11, Limit: 10}, *le)
	require.NotErrorIs(t, errors.New("other"), action.ErrLimit)
}

// A caller tells a limit hit from any other failure the same way whichever
// package hit it.
func ExampleLimitError() {
	err := fmt.Errorf("reactor: request 3: %w", &action.LimitError{What: "request bytes", Size: 70 << 20, Limit: 64 << 20})
	var le *action.LimitError
	if errors.As(err, &le) {
		fmt.Printf("over the limit: %s (%d > %d)\n", le.What, le.Size, le.Limit)
	}
	fmt.Println(errors.Is(err, action.ErrLimit))
	fmt.Println(err)
	// Output:
	// over the limit: request bytes (73400320 > 67108864)
	// true
	// reactor: request 3: request bytes: 73400320 exceeds the limit of 67108864
}
