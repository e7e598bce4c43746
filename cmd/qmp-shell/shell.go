package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
)

// shell runs qmp-shell input lines against a connected client and prints
// replies and events.
type shell struct {
	c          *qmpclient.Client
	hmp        bool
	verbose    bool
	pretty     bool          // -p: indented JSON; otherwise one line
	cmdTimeout time.Duration // --command-timeout: 0 waits for ever
	onEnter    bool          // --events=enter: events wait for an empty line
	p          parser
	kb         *keyboard // the terminal in interactive mode, else nil

	mu  sync.Mutex // serialises output and guards failed
	out io.Writer

	events  *qmpclient.Listener
	watch   *qmpclient.Listener // with --events=enter, a listener that takes none: it sees the end
	dropped uint64              // events dropped from the full queue, already reported
	order   sync.Mutex          // held while taking events and printing a reply after them
	comp    completer           // Tab completion
	failed  bool                // a command failed
}

// errInterrupted is the cause of a command's context when Ctrl-C stopped
// the wait for its reply.
var errInterrupted = errors.New("interrupted")

// errCommandTimeout is the cause of a command's context when
// --command-timeout passed.
var errCommandTimeout = errors.New("command timeout")

// errConnectionLost ends the input loop: the server went away.
var errConnectionLost = errors.New("connection lost")

// errQuit ends the input loop after quit: the server closes the connection.
var errQuit = errors.New("quit")

// printf writes to the output under the lock.
func (sh *shell) printf(format string, args ...any) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	fmt.Fprintf(sh.out, format, args...)
}

// formatEvent renders an event on one line, clearly marked.
func formatEvent(ev qmp.Event) string {
	var b strings.Builder
	b.WriteString("event ")
	b.WriteString(ev.Name)
	if !ev.Timestamp.IsZero() {
		b.WriteString(" at ")
		b.WriteString(ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000000Z"))
	}
	if len(ev.Data) > 0 && json.Valid(ev.Data) {
		b.WriteString(": ")
		b.WriteString(oneLine(ev.Data))
	}
	b.WriteByte('\n')
	return b.String()
}

// pretty indents raw JSON by four spaces, as qmp-shell -p does, keeping the
// server's member order.
func pretty(raw []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "    "); err != nil {
		return string(raw)
	}
	return b.String()
}

// oneLine writes raw JSON on one line with a space after each ':' and ','
// (as QEMU and Python's json module write it), keeping the member order.
func oneLine(raw []byte) string {
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return string(raw)
	}
	var b strings.Builder
	inString, escaped := false, false
	for _, ch := range c.Bytes() {
		b.WriteByte(ch)
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
		case ch == '"':
			inString = true
		case ch == ':' || ch == ',':
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// render formats a message for printing: indented with -p, else one line.
func (sh *shell) render(raw []byte) string {
	if sh.pretty {
		return pretty(raw)
	}
	return oneLine(raw)
}

// withID appends "id" to a reply object when the user's command had one.
func withID(obj []byte, id json.RawMessage) []byte {
	if id == nil {
		return obj
	}
	out := append([]byte{}, obj[:len(obj)-1]...)
	out = append(out, `, "id": `...)
	out = append(out, id...)
	return append(out, '}')
}

// drainEvents prints the events already received, without waiting: at
// most a full queue of them, so that a server flooding events faster than
// they print cannot keep it here (and a reply unprinted) for ever. The
// caller holds sh.order (or is the only goroutine left).
func (sh *shell) drainEvents() {
	if n := sh.events.Dropped(); n > sh.dropped {
		sh.printf("qmp-shell: %d events dropped: more than %d were waiting\n", n-sh.dropped, maxQueuedEvents)
		sh.dropped = n
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range maxQueuedEvents {
		ev, err := sh.events.Next(done)
		if err != nil {
			return
		}
		sh.printf("%s", formatEvent(ev))
	}
}

// watchEvents prints events as they arrive until ctx ends or the session
// does. Used in interactive mode, where events may come while the user types.
//
// Events are taken from the listener only under sh.order, which execute
// holds from its own drain until its reply is printed: an event a command
// caused therefore never prints after that command's reply.
func (sh *shell) watchEvents(ctx context.Context) {
	if sh.watch != nil {
		// --events=enter: only the end of the session is shown at once.
		if errors.Is(sh.watch.Wait(ctx), qmpclient.ErrDisconnected) {
			sh.printf("qmp-shell: the server closed the connection\n")
		}
		return
	}
	for {
		err := sh.events.Wait(ctx)
		if errors.Is(err, qmpclient.ErrDisconnected) {
			sh.order.Lock()
			sh.drainEvents() // events that came before the end
			sh.order.Unlock()
			// Say so now, not when the user next presses Enter.
			sh.printf("qmp-shell: the server closed the connection\n")
		}
		if err != nil {
			return
		}
		sh.order.Lock()
		sh.drainEvents()
		sh.order.Unlock()
	}
}

// execute runs one line. It returns errQuit after quit, errConnectionLost
// (wrapped) when the session ended otherwise; other failures are printed
// and remembered.
func (sh *shell) execute(ctx context.Context, line string) error {
	if sh.onEnter && strings.TrimSpace(line) == "" && !sh.p.inTransaction {
		sh.order.Lock()
		sh.drainEvents() // --events=enter: an empty line shows what came
		sh.order.Unlock()
		return nil
	}
	var req *request
	if sh.hmp {
		line = strings.TrimSpace(line)
		if line == "" {
			return nil
		}
		args, _ := json.Marshal(map[string]string{"command-line": line})
		req = &request{Name: "human-monitor-command", Args: args}
	} else {
		var err error
		if req, err = sh.p.parse(line); err != nil {
			sh.fail("%v\n", err)
			return nil
		}
		if req == nil {
			return nil
		}
	}
	if sh.verbose {
		sh.printf("%s\n", sh.render(req.wire()))
	}
	var args any
	if req.Args != nil {
		args = req.Args
	}
	cmdCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if sh.cmdTimeout > 0 {
		var stop context.CancelFunc
		cmdCtx, stop = context.WithTimeoutCause(cmdCtx, sh.cmdTimeout, errCommandTimeout)
		defer stop()
	}
	if sh.kb != nil {
		defer sh.kb.whileRunning(func() { cancel(errInterrupted) })()
	}
	var ret json.RawMessage
	var err error
	if req.OOB {
		ret, err = sh.c.ExecuteOOB(cmdCtx, req.Name, args)
	} else {
		ret, err = sh.c.Execute(cmdCtx, req.Name, args)
	}
	sh.order.Lock() // no event may slip between the drain and the reply
	defer sh.order.Unlock()
	if !sh.onEnter {
		sh.drainEvents() // events caused by the command come before its reply
	}
	var ee *qmpclient.ExecuteError
	switch {
	case errors.As(err, &ee):
		raw, _ := json.Marshal(map[string]qmp.ErrorInfo{"error": ee.Info})
		sh.fail("%s\n", sh.render(withID(raw, req.ID)))
		return nil
	case errors.Is(err, qmpclient.ErrDisconnected):
		if isQuit(req, line, sh.hmp) {
			// QEMU may close before its reply to quit is read.
			return errQuit
		}
		sh.fail("error: %v\n", err)
		return fmt.Errorf("%w: %v", errConnectionLost, err)
	case err != nil && ctx.Err() == nil && context.Cause(cmdCtx) == errInterrupted:
		sh.fail("^C\nqmp-shell: interrupted: stopped waiting for the reply to %s (a late reply is dropped)\n", req.Name)
		return nil
	case err != nil && ctx.Err() == nil && context.Cause(cmdCtx) == errCommandTimeout:
		sh.fail("qmp-shell: no reply to %s within %v (--command-timeout); stopped waiting (a late reply is dropped)\n", req.Name, sh.cmdTimeout)
		return nil
	case err != nil:
		sh.fail("error: %v\n", err)
		return nil
	}
	if sh.hmp {
		var text string
		if json.Unmarshal(ret, &text) == nil {
			sh.printf("%s", strings.ReplaceAll(text, "\r\n", "\n"))
			if isQuit(req, line, sh.hmp) {
				return errQuit
			}
			return nil
		}
	}
	raw := append(append([]byte(`{"return": `), ret...), '}')
	sh.printf("%s\n", sh.render(withID(raw, req.ID)))
	if isQuit(req, line, sh.hmp) {
		return errQuit // QEMU closes the connection after quit
	}
	return nil
}

// isQuit reports whether a command asks the server to quit.
func isQuit(req *request, line string, hmp bool) bool {
	if hmp {
		return line == "quit" || line == "q"
	}
	return req.Name == "quit"
}

// fail prints a failure and remembers that one happened.
func (sh *shell) fail(format string, args ...any) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.failed = true
	fmt.Fprintf(sh.out, format, args...)
}

// loadCompletion fetches what Tab completes: command names (from
// query-commands) and the schema (query-qmp-schema) for arguments, or with
// -H the HMP commands (from help and info). A server that refuses leaves
// that part of completion empty.
func (sh *shell) loadCompletion(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sh.comp.hmp = sh.hmp
	if sh.hmp {
		sh.comp.commands = hmpWords(sh.hmpText(ctx, "help"))
		sh.comp.info = hmpWords(strings.ReplaceAll(sh.hmpText(ctx, "info"), "info ", ""))
		return
	}
	var list []struct {
		Name string `json:"name"`
	}
	if err := sh.c.ExecuteInto(ctx, "query-commands", nil, &list); err == nil {
		names := make([]string, 0, len(list))
		for _, c := range list {
			names = append(names, c.Name)
		}
		sort.Strings(names)
		sh.comp.commands = names
	}
	if raw, err := sh.c.Execute(ctx, "query-qmp-schema", nil); err == nil {
		sh.comp.schema, _ = parseSchema(raw)
	}
}

// hmpText runs an HMP command for completion, "" when it fails.
func (sh *shell) hmpText(ctx context.Context, line string) string {
	var text string
	_ = sh.c.ExecuteInto(ctx, "human-monitor-command", map[string]string{"command-line": line}, &text)
	return text
}

// hmpWords takes the command names from HMP help text: the first word of
// each line that does not start with blanks, split at "|" (aliases).
func hmpWords(help string) []string {
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(help, "\r\n", "\n"), "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		word, _, _ := strings.Cut(line, " ")
		for _, n := range strings.Split(word, "|") {
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}
