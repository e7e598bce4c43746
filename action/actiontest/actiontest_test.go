package actiontest_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
	"github.com/wirereactor/wirereactor/action/actiontest"
)

// lines is a small, correct machine: it delivers each newline-terminated
// line it is fed (copied) and, when reply is set, sends reply(line) for it.
// It reuses its send buffer, as real machines do.
type lines struct {
	in    []byte
	out   []byte
	sent  []byte
	reply func(string) string
	eof   bool
	err   error
	limit int
}

func (m *lines) Feed(p []byte) {
	if m.err == nil {
		m.in = append(m.in, p...)
	}
}
func (m *lines) FeedEOF() { m.eof = true }

// Send queues a line to send.
func (m *lines) Send(s string) { m.out = append(m.out, s+"\n"...) }

func (m *lines) Next() action.Action[string] {
	if m.err != nil {
		return action.Fail[string](m.err)
	}
	if len(m.out) > 0 {
		m.sent, m.out = m.out, m.sent[:0]
		return action.SendBytes[string](m.sent)
	}
	if i := bytes.IndexByte(m.in, '\n'); i >= 0 && (m.limit == 0 || i <= m.limit) {
		line := string(m.in[:i])
		m.in = m.in[:copy(m.in, m.in[i+1:])]
		if m.reply != nil {
			if r := m.reply(line); r != "" {
				m.Send(r)
			}
		}
		return action.DeliverValue(line)
	}
	if m.limit > 0 && len(m.in) > m.limit {
		m.err = errors.New("line too long")
		return action.Fail[string](m.err)
	}
	if m.eof {
		m.err = io.EOF
		if len(m.in) > 0 {
			m.err = io.ErrUnexpectedEOF
		}
		return action.Fail[string](m.err)
	}
	return action.Want[string]()
}

func TestDrainCopiesSendsAndStopsAtWantMore(t *testing.T) {
	m := &lines{reply: strings.ToUpper}
	m.Feed([]byte("a\nb\nc"))
	got := actiontest.Drain(m)
	require.Equal(t, []string{"a", "b"}, got.Delivered())
	// The machine reused its send buffer; the kit's copies are intact.
	require.Equal(t, "A\nB\n", string(got.Sent()))
	require.NoError(t, got.Err())
	require.Equal(t, "deliver(a)\nsend \"A\\n\"\ndeliver(b)\nsend \"B\\n\"\n", got.String())
	require.Empty(t, actiontest.Drain(m), "a drained machine has nothing more")
}

func TestDrainStopsAtError(t *testing.T) {
	m := &lines{}
	m.Feed([]byte("x\npartial"))
	m.FeedEOF()
	got := actiontest.Drain(m)
	require.Equal(t, []string{"x"}, got.Delivered())
	require.ErrorIs(t, got.Err(), io.ErrUnexpectedEOF)
	require.Len(t, got, 2)
}

// spinner never says WantMore.
type spinner struct{}

func (spinner) Next() action.Action[int] { return action.DeliverValue(1) }

func TestDrainGivesUpOnARunawayMachine(t *testing.T) {
	got := actiontest.Drain[int](spinner{}, actiontest.Limit(50))
	require.ErrorIs(t, got.Err(), actiontest.ErrRunaway)
	require.Len(t, got.Delivered(), 50)
}

func TestFeedEverySplitGivesTheSameResult(t *testing.T) {
	input := []byte("one\ntwo\nthree\n")
	runs := 0
	for how, cut := range actiontest.Splits(len(input)) {
		runs++
		got := actiontest.Feed(&lines{reply: strings.ToUpper}, input, cut, actiontest.ThenEOF())
		require.Equal(t, []string{"one", "two", "three"}, got.Delivered(), how)
		require.Equal(t, "ONE\nTWO\nTHREE\n", string(got.Sent()), how)
		require.ErrorIs(t, got.Err(), io.EOF, how)
	}
	require.Equal(t, len(input)+1, runs, "whole, one byte at a time, and every cut")
}

func TestFeedOneByteFeedsSingleBytes(t *testing.T) {
	m := &recorder{}
	actiontest.Feed(m, []byte("abc"), actiontest.OneByte())
	require.Equal(t, []string{"a", "b", "c"}, m.feeds)
	m = &recorder{}
	actiontest.Feed(m, []byte("abcd"), actiontest.CutAt(3))
	require.Equal(t, []string{"abc", "d"}, m.feeds)
	m = &recorder{}
	actiontest.Feed(m, []byte("abcde"), actiontest.Chunks(2))
	require.Equal(t, []string{"ab", "cd", "e"}, m.feeds)
	m = &recorder{}
	actiontest.Feed(m, []byte("abcd"))
	require.Equal(t, []string{"abcd"}, m.feeds)
}

// recorder records the pieces it was fed.
type recorder struct{ feeds []string }

func (m *recorder) Feed(p []byte)               { m.feeds = append(m.feeds, string(p)) }
func (m *recorder) FeedEOF()                    {}
func (m *recorder) Next() action.Action[string] { return action.Want[string]() }

// keeper breaks the Feed contract: it keeps referencing the bytes it was fed
// after saying WantMore, and delivers them when a newline comes.
type keeper struct {
	kept [][]byte
	q    []string
}

func (m *keeper) Feed(p []byte) {
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		var b []byte
		for _, k := range m.kept {
			b = append(b, k...)
		}
		m.q = append(m.q, string(append(b, p[:i]...)))
		m.kept = nil
		return
	}
	m.kept = append(m.kept, p)
}
func (m *keeper) FeedEOF() {}
func (m *keeper) Next() action.Action[string] {
	if len(m.q) > 0 {
		v := m.q[0]
		m.q = m.q[1:]
		return action.DeliverValue(v)
	}
	return action.Want[string]()
}

func TestScribbleCatchesAMachineThatKeepsFedBytes(t *testing.T) {
	got := actiontest.Feed(&keeper{}, []byte("hello\n"), actiontest.OneByte())
	require.Equal(t, []string{"hello"}, got.Delivered(), "without Scribble the bug hides")
	got = actiontest.Feed(&keeper{}, []byte("hello\n"), actiontest.OneByte(), actiontest.Scribble())
	require.Equal(t, []string{"\xa5\xa5\xa5\xa5\xa5"}, got.Delivered())
	got = actiontest.Feed(&lines{}, []byte("hello\n"), actiontest.OneByte(), actiontest.Scribble())
	require.Equal(t, []string{"hello"}, got.Delivered(), "a correct machine is unaffected")
}

func TestPumpRunsTwoMachinesUntilQuiet(t *testing.T) {
	for how, cut := range actiontest.Splits(9) {
		client := &lines{}
		server := &lines{reply: func(s string) string { return "re " + s }}
		client.Send("hello")
		client.Send("world")
		var asked []string
		c, s := actiontest.Pump(client, server, cut,
			actiontest.OnDeliver(server, func(v string) { asked = append(asked, v) }),
			actiontest.OnDeliver(client, func(v string) {
				if v == "re hello" {
					client.Send("more") // a handler may give the machine more work
				}
			}))
		require.Equal(t, []string{"hello", "world", "more"}, asked, how)
		require.Equal(t, []string{"hello", "world", "more"}, s.Delivered(), how)
		require.Equal(t, []string{"re hello", "re world", "re more"}, c.Delivered(), how)
		require.Equal(t, "hello\nworld\nmore\n", string(c.Sent()), how)
		require.NoError(t, c.Err(), how)
		require.NoError(t, s.Err(), how)
	}
}

func TestPumpStopsAMachineAtItsError(t *testing.T) {
	client := &lines{}
	server := &lines{limit: 3, reply: strings.ToUpper}
	client.Send("ok")
	client.Send("far too long")
	c, s := actiontest.Pump(client, server)
	require.Equal(t, []string{"ok"}, s.Delivered())
	require.EqualError(t, s.Err(), "line too long")
	require.Equal(t, []string{"OK"}, c.Delivered(), "bytes sent before the error arrive")
	require.NoError(t, c.Err())
}

func TestPumpGivesUpOnMachinesThatTalkForever(t *testing.T) {
	echo := func(s string) string { return s }
	a, b := &lines{reply: echo}, &lines{reply: echo}
	a.Send("ping")
	ga, gb := actiontest.Pump(a, b, actiontest.Limit(100))
	require.ErrorIs(t, ga.Err(), actiontest.ErrRunaway)
	require.ErrorIs(t, gb.Err(), actiontest.ErrRunaway)
}

// keepingDriver is a broken driver: it keeps Send bytes without copying.
func keepingDriver(m action.Machine[string]) (kept [][]byte) {
	for a := m.Next(); a.Kind != action.KindWantMore; a = m.Next() {
		if a.Kind == action.KindSend {
			kept = append(kept, a.Bytes)
		}
	}
	return kept
}

func TestPoisonCatchesADriverThatKeepsSendBytes(t *testing.T) {
	m := &lines{}
	m.Send("abc")
	kept := keepingDriver(actiontest.Poison[string](m))
	require.Equal(t, [][]byte{[]byte("\xde\xde\xde\xde")}, kept)

	// Draining through the wrapper with a correct driver sees the bytes.
	m.Send("abc")
	m.Feed([]byte("x\n"))
	p := actiontest.Poison[string](m)
	got := actiontest.Drain(p)
	require.Equal(t, "abc\n", string(got.Sent()))
	require.Equal(t, []string{"x"}, got.Delivered())
	require.Same(t, m, p.Unwrap())
	require.Equal(t, "v", p.Retain("v"))
}

// aliasing delivers a slice of its own buffer, valid until its next call,
// and does not implement action.Retainer.
type aliasing struct {
	buf []byte
	n   int
}

func (m *aliasing) Next() action.Action[[]byte] {
	if m.n == 3 {
		return action.Want[[]byte]()
	}
	m.n++
	m.buf = append(m.buf[:0], byte('0'+m.n))
	return action.DeliverValue(m.buf)
}

func TestRetainWithKeepsValuesOfMachinesWithoutRetain(t *testing.T) {
	got := actiontest.Drain[[]byte](&aliasing{})
	require.Equal(t, [][]byte{[]byte("3"), []byte("3"), []byte("3")}, got.Delivered(), "the values alias the machine's buffer")
	m := &aliasing{}
	got = actiontest.Drain[[]byte](m, actiontest.RetainWith[[]byte](m, bytes.Clone))
	require.Equal(t, [][]byte{[]byte("1"), []byte("2"), []byte("3")}, got.Delivered())
}

func TestDrainCallsOnDeliver(t *testing.T) {
	m := &lines{}
	m.Feed([]byte("a\nb\n"))
	var seen []string
	got := actiontest.Drain[string](m, actiontest.OnDeliver[string](m, func(v string) {
		seen = append(seen, v)
		if v == "a" {
			m.Send("after a") // the handler runs before the next Next
		}
	}))
	require.Equal(t, []string{"a", "b"}, seen)
	require.Equal(t, "deliver(a)\nsend \"after a\\n\"\ndeliver(b)\n", got.String())
}
