package main

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"strings"
)

// maxHistory bounds the lines kept in memory and loaded from the file.
const maxHistory = 1000

// history is a term.History kept in a file: lines are loaded at start and
// appended as they are entered.
type history struct {
	lines []string // oldest first
	f     *os.File // nil without a file
}

// openHistory loads path (if it exists) and opens it for appending. Errors
// leave the history in memory only: losing history must not stop the shell.
func openHistory(path string) *history {
	h := &history{}
	if path == "" {
		return h
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			h.push(sc.Text())
		}
		f.Close()
	}
	h.f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	return h
}

func (h *history) push(line string) {
	if len(h.lines) == maxHistory {
		copy(h.lines, h.lines[1:])
		h.lines = h.lines[:maxHistory-1]
	}
	h.lines = append(h.lines, line)
}

// Add records a line without trailing blanks (Tab completion leaves one);
// empty lines and repeats of the last line are skipped.
func (h *history) Add(line string) {
	line = strings.TrimRight(line, " \t")
	if strings.TrimSpace(line) == "" || strings.ContainsAny(line, "\r\n") {
		return
	}
	if n := len(h.lines); n > 0 && h.lines[n-1] == line {
		return
	}
	h.push(line)
	if h.f != nil {
		_, _ = io.WriteString(h.f, line+"\n")
	}
}

// Len returns the number of lines.
func (h *history) Len() int { return len(h.lines) }

// At returns a line, 0 being the most recent.
func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }

func (h *history) close() {
	if h.f != nil {
		h.f.Close()
	}
}

// discardLogger silences the library's logs: the shell reports what matters
// itself.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
