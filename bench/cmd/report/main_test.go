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

	"github.com/wirereactor/wirereactor/bench/internal/harness"
)

func TestMain(m *testing.M) {
	harness.ServeChildIfAsked() // the scale runs re-execute this binary as their server
	os.Exit(m.Run())
}

// requirePeers is set in CI: a row skipped because a peer is missing fails
// there instead of passing quietly.
var requirePeers = os.Getenv("WIREREACTOR_REQUIRE_PEERS") == "1"

// TestQuickReportEndToEnd runs the report as CI would (-quick) and checks
// every row carries a measured value or an explicit reason it was skipped,
// in the text, Markdown, JSON and SVG outputs and the rewritten README
// alike.
func TestQuickReportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark section for ~30s")
	}
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("# x\n\n"+harness.ReadmeBegin+"\n"+harness.ReadmeEnd+"\n"), 0o644))
	out := filepath.Join(dir, "results")
	var stdout, stderr bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("report:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	code := run(context.Background(), []string{"-quick", "-out", out, "-readme", readme}, &stdout, &stderr)
	require.Zero(t, code, "stderr: %s", stderr.String())

	js, err := os.ReadFile(filepath.Join(out, "report.json"))
	require.NoError(t, err)
	var r harness.Report
	require.NoError(t, json.Unmarshal(js, &r))
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	svg, err := os.ReadFile(filepath.Join(out, "report.svg"))
	require.NoError(t, err)
	rd, err := os.ReadFile(readme)
	require.NoError(t, err)
	require.Contains(t, string(rd), "](results/report.svg)")
	require.Contains(t, string(md), "](report.svg)")

	require.Equal(t, "go run ./bench/cmd/report -quick", r.Command)
	require.NotEmpty(t, r.Machine.GoVersion)
	require.Positive(t, r.Machine.Cores)

	groups := map[string]int{}
	for _, row := range r.Rows {
		groups[row.Group]++
		name := row.Group + " / " + row.Name
		require.Contains(t, stdout.String(), row.Name, name)
		require.Contains(t, string(md), "| "+row.Name+" |", name)
		require.Contains(t, string(rd), "| "+row.Name+" |", name)
		name = row.ID
		if row.Skipped != "" {
			require.NotEqual(t, "skipped", strings.TrimSpace(row.Skipped), "%s: a skip must say why", name)
			if requirePeers {
				for _, missing := range []string{"not found", "not importable", "did not build"} {
					require.NotContains(t, row.Skipped, missing, "%s: peer missing in CI", name)
				}
			}
			require.NotContains(t, row.Skipped, "failed", "%s: a side failed", name)
			require.Nil(t, row.PeerMed, "%s: a skipped row shows no figure", name)
			require.Zero(t, row.Ratio, name)
			continue
		}
		require.NotNil(t, row.OursMed, name)
		require.NotNil(t, row.PeerMed, name)
		require.Positive(t, row.Ratio, name)
		require.Len(t, row.Ratios, harness.QuickConfig().Count, name)
		require.LessOrEqual(t, row.Min, row.Ratio, name)
		require.GreaterOrEqual(t, row.Max, row.Ratio, name)
		if row.OursMed.Counted {
			require.Zero(t, row.OursMed.Crossed, "%s: our replies crossed", name)
		}
		if row.Metric == "cpu" {
			require.Positive(t, row.OursMed.CPUNsPerOp, name)
		} else {
			require.Positive(t, row.OursMed.NsPerOp, name)
			require.Positive(t, row.PeerMed.NsPerOp, name)
		}
		if row.Target != "" {
			require.NotNil(t, row.Met, "%s: a target is judged", name)
			require.Contains(t, string(svg), row.Group+": "+row.Name, name)
		}
	}
	var targeted int
	for _, row := range r.Rows {
		if _, ok := harness.TargetFor(row.ID); ok {
			targeted++
		}
	}
	require.Len(t, harness.Targets, targeted, "every target judged a row")
	for _, g := range []string{"frame", "reactor", "qmp", "transport"} {
		require.Positive(t, groups[g], "no %s rows", g)
	}

	require.Empty(t, r.ScaleSkipped)
	require.Len(t, r.Scale, len(harness.ScaleDriverNames())*len(harness.QuickConfig().ScaleSteps))
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
	require.NotContains(t, stdout.String(), "Mercurial serverreactor: –")
	// Our side still ran and is shown.
	require.Contains(t, stdout.String(), "reactor.ServerMachine: ")
}

// TestRenderFromJSON: -from re-renders a saved report (README included)
// without measuring, and the command it records is the measuring one.
func TestRenderFromJSON(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	require.Zero(t, run(context.Background(), []string{"-quick", "-only", "reactor", "-python", "/nonexistent/python3",
		"-out", dir}, &stdout, &stderr), stderr.String())
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte(harness.ReadmeBegin+"\n"+harness.ReadmeEnd+"\n"), 0o644))
	out2 := filepath.Join(dir, "again")
	stdout.Reset()
	require.Zero(t, run(context.Background(), []string{"-from", filepath.Join(dir, "report.json"), "-out", out2, "-readme", readme},
		&stdout, &stderr), stderr.String())
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	md2, err := os.ReadFile(filepath.Join(out2, "report.md"))
	require.NoError(t, err)
	require.Equal(t, string(md), string(md2))
	rd, err := os.ReadFile(readme)
	require.NoError(t, err)
	require.Contains(t, string(rd), "`go run ./bench/cmd/report -quick -only reactor -python /nonexistent/python3`")
	require.Contains(t, string(rd), "](again/report.svg)")
}

func TestReproduce(t *testing.T) {
	require.Equal(t, "go run ./bench/cmd/report -quick -count 3", reproduce([]string{"-v", "-quick", "-out", "x", "-count", "3", "-readme=README.md"}))
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-only", "nope"}, {"-scale", "x"}, {"-bogus"}} {
		args = append(args, "-out", "")
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(context.Background(), args, &stdout, &stderr), args)
		require.NotEmpty(t, stderr.String(), args)
	}
}
