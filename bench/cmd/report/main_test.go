package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/bench"
)

func TestMain(m *testing.M) {
	bench.ServeChildIfAsked() // the scale runs re-execute this binary as their server
	os.Exit(m.Run())
}

// requirePeers is set in CI: a row skipped because a peer is missing fails
// there instead of passing quietly.
var requirePeers = os.Getenv("WIREREACTOR_REQUIRE_PEERS") == "1"

// TestQuickReportEndToEnd runs the report as CI would (-quick) and checks
// every row carries a measured value or an explicit reason it was skipped,
// in the text, Markdown and JSON outputs alike.
func TestQuickReportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark section for ~30s")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("report:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	code := run(context.Background(), []string{"-quick", "-out", dir}, &stdout, &stderr)
	require.Zero(t, code, "stderr: %s", stderr.String())

	js, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var r bench.Report
	require.NoError(t, json.Unmarshal(js, &r))
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)

	require.Equal(t, "go run ./bench/cmd/report -quick -out "+dir, r.Command)
	require.NotEmpty(t, r.Machine.GoVersion)
	require.Positive(t, r.Machine.Cores)

	groups := map[string]int{}
	for _, row := range r.Rows {
		groups[row.Group]++
		name := row.Group + " / " + row.Name
		require.Contains(t, stdout.String(), row.Name, name)
		require.Contains(t, string(md), "| "+row.Name+" |", name)
		if row.Skipped != "" {
			require.NotEqual(t, "skipped", strings.TrimSpace(row.Skipped), "%s: a skip must say why", name)
			if requirePeers {
				require.NotContains(t, row.Skipped, "not found", "%s: peer missing in CI", name)
				require.NotContains(t, row.Skipped, "not importable", "%s: peer missing in CI", name)
			}
			require.NotContains(t, row.Skipped, "failed", "%s: a side failed", name)
			continue
		}
		require.NotNil(t, row.OursMed, name)
		require.NotNil(t, row.PeerMed, name)
		require.Positive(t, row.Ratio, name)
		require.Len(t, row.Ratios, bench.QuickConfig().Count, name)
		if row.Metric == "cpu" {
			require.Positive(t, row.OursMed.CPUNsPerOp, name)
		} else {
			require.Positive(t, row.OursMed.NsPerOp, name)
			require.Positive(t, row.PeerMed.NsPerOp, name)
		}
		if row.Target != "" {
			require.NotNil(t, row.Met, "%s: a target is judged", name)
		}
	}
	for _, g := range []string{"frame", "reactor", "qmp", "transport"} {
		require.Positive(t, groups[g], "no %s rows", g)
	}
	require.Len(t, r.Rows, len(bench.FrameComparisons())+len(bench.ReactorComparisons())+len(bench.QMPComparisons())+len(bench.TransportComparisons()))

	require.Empty(t, r.ScaleSkipped)
	require.Len(t, r.Scale, len(bench.ScaleDriverNames())*len(bench.QuickConfig().ScaleSteps))
	for _, s := range r.Scale {
		require.Empty(t, s.Skipped, s.Driver)
		require.Positive(t, s.ConnectNs, s.Driver)
		require.Positive(t, s.Executes, s.Driver)
		require.Positive(t, s.BytesPerConn, s.Driver)
		require.Contains(t, string(md), "| "+s.Driver+" |")
	}
}

// TestPeerSkipsAreReasons points the report at peers that do not exist:
// their rows are skipped with the reason, the rest still run.
func TestPeerSkipsAreReasons(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-quick", "-only", "reactor", "-out", "",
		"-python", "/nonexistent/python3", "-qemu", "/nonexistent/qemu"}, &stdout, &stderr)
	require.Zero(t, code, stderr.String())
	require.Contains(t, stdout.String(), "skipped: Mercurial serverreactor: skipped: python /nonexistent/python3 not found")
	// Our side still ran and is shown.
	require.Contains(t, stdout.String(), "reactor.ServerReactor: ")
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-only", "nope"}, {"-scale", "x"}, {"-bogus"}} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(context.Background(), args, &stdout, &stderr), args)
		require.NotEmpty(t, stderr.String(), args)
	}
}
