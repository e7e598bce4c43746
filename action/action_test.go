package action_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
)

func TestConstructorsSetKindAndField(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name string
		a    action.Action[string]
		kind action.Kind
		str  string
	}{
		{"want", action.Want[string](), action.KindWantMore, "wantmore"},
		{"send", action.SendBytes[string]([]byte("abc")), action.KindSend, "send(3 bytes)"},
		{"deliver", action.DeliverValue("hello"), action.KindDeliver, "deliver(hello)"},
		{"error", action.Fail[string](boom), action.KindError, "error(boom)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.kind, tc.a.Kind)
			require.Equal(t, tc.str, tc.a.String())
		})
	}
	require.Equal(t, "kind(9)", action.Kind(9).String())
}

func TestActionIsComparableZeroValueWantMore(t *testing.T) {
	var a action.Action[int]
	require.Equal(t, action.KindWantMore, a.Kind, "the zero Action must mean WantMore")
}

func BenchmarkReturnAction(b *testing.B) {
	b.ReportAllocs()
	payload := []byte("payload")
	var sink action.Action[int]
	for i := 0; i < b.N; i++ {
		if i&1 == 0 {
			sink = action.SendBytes[int](payload)
		} else {
			sink = action.DeliverValue(i)
		}
	}
	_ = sink
}

// upper is a tiny machine: it delivers each input line upper-cased and
// echoes "ok\n" to the peer.
type upper struct {
	buf []byte
	out []byte
	q   []string
	eof bool
}

func (m *upper) Feed(p []byte) { m.buf = append(m.buf, p...) }
func (m *upper) FeedEOF()      { m.eof = true }
func (m *upper) Next() action.Action[string] {
	if len(m.q) > 0 {
		v := m.q[0]
		m.q = m.q[1:]
		return action.DeliverValue(v)
	}
	for i, c := range m.buf {
		if c == '\n' {
			line := string(m.buf[:i])
			m.buf = m.buf[i+1:]
			up := []byte(line)
			for j, c := range up {
				if 'a' <= c && c <= 'z' {
					up[j] = c - 'a' + 'A'
				}
			}
			m.q = append(m.q, string(up))
			m.out = append(m.out[:0], "ok\n"...)
			return action.SendBytes[string](m.out)
		}
	}
	if m.eof && len(m.buf) > 0 {
		return action.Fail[string](fmt.Errorf("input ended inside a line of %d bytes", len(m.buf)))
	}
	return action.Want[string]()
}

// Driving a machine: feed input, then take actions until WantMore or Error.
func Example() {
	var m action.Machine[string] = &upper{}
	m.Feed([]byte("hello\nwor"))
	m.Feed([]byte("ld\npartial"))
	m.FeedEOF()
	for {
		a := m.Next()
		fmt.Println(a)
		if a.Kind == action.KindWantMore || a.Kind == action.KindError {
			break
		}
	}
	// Output:
	// send(3 bytes)
	// deliver(HELLO)
	// send(3 bytes)
	// deliver(WORLD)
	// error(input ended inside a line of 7 bytes)
}
