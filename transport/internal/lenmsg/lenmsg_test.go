package lenmsg

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
)

// run feeds data in chunks of size step and returns delivered messages,
// the bytes sent, and the error, if any.
func run(m *Machine, data []byte, step int) (msgs []string, sent []byte, err error) {
	acts := actiontest.Feed(m, data, actiontest.Chunks(step), actiontest.ThenEOF())
	return acts.Delivered(), acts.Sent(), acts.Err()
}

func TestMachine(t *testing.T) {
	wire := Append(nil, []byte("one"))
	wire = Append(wire, nil)
	wire = Append(wire, []byte("three"))
	tests := []struct {
		name    string
		data    []byte
		max     int
		want    []string
		wantErr error
	}{
		{"messages", wire, 0, []string{"one", "", "three"}, io.EOF}, // a clean end
		{"truncated", wire[:len(wire)-1], 0, []string{"one", ""}, ErrTruncated},
		{"too long", wire, 4, []string{"one", ""}, tooLong(5, 4)},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 2, 3, 5, 100} {
			msgs, sent, err := run(&Machine{Max: tt.max, Echo: true}, tt.data, step)
			require.Equal(t, tt.want, msgs, "%s step %d", tt.name, step)
			var echoed []byte
			for _, m := range tt.want {
				echoed = Append(echoed, []byte(m))
			}
			require.Equal(t, echoed, sent)
			require.Equal(t, tt.wantErr.Error(), err.Error())
		}
	}
}

// FuzzMachine checks that chunking never changes what is delivered, and
// that the discarding sink counts the same messages.
func FuzzMachine(f *testing.F) {
	f.Add(Append(Append(nil, []byte("a")), []byte("bc")), 1)
	f.Add([]byte{0, 0, 0, 2, 'x'}, 3)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 2)
	f.Fuzz(func(t *testing.T, data []byte, step int) {
		if step <= 0 || step > 64 {
			step = 7
		}
		whole, _, errWhole := run(&Machine{Max: 64}, data, len(data)+1)
		chunked, _, errChunked := run(&Machine{Max: 64}, data, step)
		if len(whole) != len(chunked) || (errWhole == nil) != (errChunked == nil) {
			t.Fatalf("whole %q (%v) vs chunked %q (%v)", whole, errWhole, chunked, errChunked)
		}
		for i := range whole {
			if whole[i] != chunked[i] {
				t.Fatalf("message %d: %q vs %q", i, whole[i], chunked[i])
			}
		}
		sink := &Machine{Max: 64, Discard: true}
		_, _, errSink := run(sink, data, step)
		if sink.Messages != len(whole) || (errSink == nil) != (errWhole == nil) {
			t.Fatalf("sink counted %d (%v), want %d (%v)", sink.Messages, errSink, len(whole), errWhole)
		}
		var tl *action.LimitError
		if errWhole != io.EOF && !errors.Is(errWhole, ErrTruncated) && !errors.As(errWhole, &tl) {
			t.Fatalf("unexpected error %v", errWhole)
		}
	})
}
