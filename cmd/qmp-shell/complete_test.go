package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// qemuCompleter completes from QEMU 7.2's own command list and schema, as
// captured in qmp/qmptest/testdata/qemu72.
func qemuCompleter(t *testing.T) *completer {
	c, err := loadQEMUCompleter()
	require.NoError(t, err)
	return c
}

func loadQEMUCompleter() (*completer, error) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "qmp", "qmptest", "testdata", "qemu72", "schema.json"))
	if err != nil {
		return nil, err
	}
	s, err := parseSchema(raw)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range s.commands {
		names = append(names, n)
	}
	return &completer{schema: s, commands: names}, nil
}

func TestCompleteCommandsAndArguments(t *testing.T) {
	c := qemuCompleter(t)
	tests := []struct {
		name          string
		line, want    string // want "" when Tab changes nothing
		inTransaction bool
	}{
		{"unique command", "query-statu", "query-status ", false},
		{"common prefix", "query-sta", "query-stat", false},
		{"ambiguous, nothing to add", "query-", "", false},
		{"unknown", "x-nothing", "", false},
		{"argument name", "blockdev-add dri", "blockdev-add driver=", false},
		{"enum value", "blockdev-add driver=null-c", "blockdev-add driver=null-co ", false},
		{"a member of the variant the tag chose", "blockdev-add driver=null-co read-z", "blockdev-add driver=null-co read-zeroes=", false},
		{"boolean value", "blockdev-add driver=null-co read-zeroes=t", "blockdev-add driver=null-co read-zeroes=true ", false},
		{"without the tag, no variant member", "blockdev-add read-z", "", false},
		{"given keys are not offered again", "object-add qom-type=memory-backend-ram id=m0 qom-t", "", false},
		{"dotted key into an alternate's object", "blockdev-add driver=raw node-name=r0 file.dri", "blockdev-add driver=raw node-name=r0 file.driver=", false},
		{"nested enum", "blockdev-add driver=raw file.driver=null-c", "blockdev-add driver=raw file.driver=null-co ", false},
		{"object member gets a dot", "blockdev-add driver=qcow2 encr", "blockdev-add driver=qcow2 encrypt.", false},
		{"ambiguous with a longer name", "blockdev-add driver=qcow2 cac", "blockdev-add driver=qcow2 cache", false},
		{"action type in a transaction", "block-dirty-bitmap-ad", "block-dirty-bitmap-add ", true},
		{"action type after transaction(", "transaction( abo", "transaction( abort ", true},
		{"action data", "block-dirty-bitmap-add no", "block-dirty-bitmap-add node=", true},
		{"command names are not actions", "query-statu", "", true},
		{"not in the middle of a word", "quer", "query-", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.lastTab = ""
			got, list, ok := c.complete(tt.line, len(tt.line), tt.inTransaction)
			require.Nil(t, list)
			require.Equal(t, tt.want != "", ok)
			require.Equal(t, tt.want, got)
		})
	}
	_, _, ok := c.complete("query-statu", 3, false)
	require.False(t, ok, "the cursor is not at the end")
}

func TestSecondTabLists(t *testing.T) {
	c := qemuCompleter(t)
	nl, list, ok := c.complete("query-", 6, false)
	require.False(t, ok)
	require.Nil(t, list, "the first Tab only completes")
	require.Empty(t, nl)
	_, list, ok = c.complete("query-", 6, false)
	require.False(t, ok)
	require.Contains(t, list, "query-status")
	require.Contains(t, list, "query-version")
	for _, n := range list {
		require.True(t, strings.HasPrefix(n, "query-"), n)
	}

	// A Tab that completes something, then one that cannot: the list.
	c.lastTab = ""
	nl, _, ok = c.complete("blockdev-add driver=null-co ", 28, false)
	require.False(t, ok, "no common prefix beyond the empty word")
	require.Empty(t, nl)
	_, list, _ = c.complete("blockdev-add driver=null-co ", 28, false)
	require.Contains(t, list, "read-zeroes=")
	require.Contains(t, list, "node-name=")
	require.NotContains(t, list, "driver=", "given already")

	// Another key in between starts over.
	c.lastTab = ""
	c.complete("query-", 6, false)
	c.lastTab = "" // what the key callback does for any other key
	_, list, _ = c.complete("query-", 6, false)
	require.Nil(t, list)
}

func TestCompleteHMP(t *testing.T) {
	help, err := os.ReadFile(filepath.Join("..", "..", "qmp", "qmptest", "testdata", "qemu72", "hmp-help.txt"))
	require.NoError(t, err)
	c := &completer{hmp: true, commands: hmpWords(string(help)), info: []string{"status", "version", "name"}}
	require.Contains(t, c.commands, "system_reset")
	require.Contains(t, c.commands, "q", "aliases count")
	nl, _, ok := c.complete("system_res", 10, false)
	require.True(t, ok)
	require.Equal(t, "system_reset ", nl)
	nl, _, ok = c.complete("info sta", 8, false)
	require.True(t, ok)
	require.Equal(t, "info status ", nl)
}

func TestColumns(t *testing.T) {
	require.Equal(t, "aa  c\nbb\n", columns([]string{"aa", "bb", "c"}, 9))
	require.Equal(t, "a\nb\n", columns([]string{"a", "b"}, 1))
}
