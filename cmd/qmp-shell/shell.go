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
)

// shell runs qmp-shell input lines against a connected client and prints
// replies and events.
type shell struct {
	c       *qmp.Client
	hmp     bool
	verbose bool
	p       parser

	mu  sync.Mutex // serialises output and guards failed
	out io.Writer

	events   *qmp.Listener
	order    sync.Mutex // held while taking events and printing a reply after them
	commands []string   // names for Tab completion, sorted
	failed   bool       // a command failed
}

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
	if len(ev.Data) > 0 {
		var compact bytes.Buffer
		if json.Compact(&compact, ev.Data) == nil {
			b.WriteString(": ")
			b.Write(compact.Bytes())
		}
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

// drainEvents prints the events already received, without waiting.
func (sh *shell) drainEvents() {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
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
	for {
		err := sh.events.Wait(ctx)
		if errors.Is(err, qmp.ErrDisconnected) {
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
		sent := map[string]any{"execute": req.Name}
		if req.OOB {
			sent = map[string]any{"exec-oob": req.Name}
		}
		if req.Args != nil {
			sent["arguments"] = req.Args
		}
		raw, _ := json.Marshal(sent)
		sh.printf("%s\n", pretty(raw))
	}
	var args any
	if req.Args != nil {
		args = req.Args
	}
	var ret json.RawMessage
	var err error
	if req.OOB {
		ret, err = sh.c.ExecuteOOB(ctx, req.Name, args)
	} else {
		ret, err = sh.c.Execute(ctx, req.Name, args)
	}
	sh.order.Lock() // no event may slip between the drain and the reply
	defer sh.order.Unlock()
	sh.drainEvents() // events caused by the command come before its reply
	var ee *qmp.ExecuteError
	switch {
	case errors.As(err, &ee):
		raw, _ := json.Marshal(map[string]qmp.ErrorInfo{"error": ee.Info})
		sh.fail("%s\n", pretty(raw))
		return nil
	case errors.Is(err, qmp.ErrDisconnected):
		if isQuit(req, line, sh.hmp) {
			// QEMU may close before its reply to quit is read.
			return errQuit
		}
		sh.fail("error: %v\n", err)
		return fmt.Errorf("%w: %v", errConnectionLost, err)
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
	raw, _ := json.Marshal(map[string]json.RawMessage{"return": ret})
	sh.printf("%s\n", pretty(raw))
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

// loadCommands fetches command names for Tab completion. A server that
// refuses query-commands leaves completion empty.
func (sh *shell) loadCommands(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var list []struct {
		Name string `json:"name"`
	}
	if err := sh.c.ExecuteInto(ctx, "query-commands", nil, &list); err != nil {
		return
	}
	names := make([]string, 0, len(list))
	for _, c := range list {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	sh.commands = names
}

// complete is the Tab completion of command names: the first word of the
// line is completed to the longest common
// prefix of the matching names, with a space when only one matches.
func (sh *shell) complete(line string, pos int) (string, int, bool) {
	if sh.hmp || pos != len(line) {
		return "", 0, false
	}
	start := strings.LastIndexAny(line, " \t") + 1
	if strings.TrimSpace(line[:start]) != "" || sh.p.inTransaction {
		// Only the command name is completed: not arguments, and not the
		// action types of a transaction, which are not command names.
		return "", 0, false
	}
	word := line[start:]
	var matches []string
	for _, n := range sh.commands {
		if strings.HasPrefix(n, word) {
			matches = append(matches, n)
		}
	}
	if len(matches) == 0 {
		return "", 0, false
	}
	common := matches[0]
	for _, m := range matches[1:] {
		for !strings.HasPrefix(m, common) {
			common = common[:len(common)-1]
		}
	}
	if len(matches) == 1 {
		common += " "
	}
	if common == word {
		return "", 0, false
	}
	nl := line[:start] + common
	return nl, len(nl), true
}
