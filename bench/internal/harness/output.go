package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func fmtNs(ns float64) string {
	switch {
	case ns == 0:
		return "–"
	case ns < 10:
		return fmt.Sprintf("%.2f ns", ns)
	case ns < 1e4:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e7:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	}
}

func fmtSample(s *Sample, metric string) string {
	if s == nil {
		return "–"
	}
	out := fmtNs(s.NsPerOp)
	if metric == "cpu" {
		out = fmtNs(s.CPUNsPerOp) + " CPU (wall " + fmtNs(s.NsPerOp) + ")"
	}
	if s.MBPerS > 0 {
		out += fmt.Sprintf(", %.0f MB/s", s.MBPerS)
	}
	if s.HasAllocs {
		out += fmt.Sprintf(", %.1f allocs", s.AllocsPerOp)
	}
	if s.Counted {
		out += fmt.Sprintf("; %d errors, %d crossed", s.Errors, s.Crossed)
		if s.FirstError != "" {
			out += " (first: " + s.FirstError + ")"
		}
	}
	return out
}

func fmtRatio(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	default:
		return fmt.Sprintf("%.2f", r)
	}
}

func (r Row) ratioText() string {
	if r.Skipped != "" {
		return "skipped"
	}
	if len(r.Ratios) > 1 {
		return fmt.Sprintf("%s× (%s–%s)", fmtRatio(r.Ratio), fmtRatio(r.Min), fmtRatio(r.Max))
	}
	return fmtRatio(r.Ratio) + "×"
}

func (r Row) targetText() string {
	if r.Target == "" {
		return ""
	}
	if r.Met == nil {
		return r.Target
	}
	if *r.Met {
		return r.Target + " met"
	}
	return r.Target + " NOT met"
}

func (r Row) peerText() string {
	if r.Skipped != "" {
		return "skipped: " + r.Skipped
	}
	return r.Peer + ": " + fmtSample(r.PeerMed, r.Metric)
}

func (r *Report) summary() string {
	m := r.Machine
	load := "load average " + m.LoadAvg + " at start"
	if r.LoadEnd != "" {
		load += ", " + r.LoadEnd + " at end"
	}
	return fmt.Sprintf("Measured %s UTC on %s (%d cores, GOMAXPROCS %d, %s; %s), %s, in %s; peers: %s. "+
		"Each figure is the median of %d interleaved runs (ours, then each peer, in turn); "+
		"ratio = peer time ÷ our time, so above 1 we are faster, with the smallest and largest of the runs' ratios in brackets; "+
		"rows marked CPU compare the measuring process's CPU time per op, the others wall time. "+
		"Targets are those of issues 11 and 12 (one table in bench/internal/harness/targets.go).",
		r.Started.Format("2006-01-02 15:04"), m.CPU, m.Cores, m.GOMAXPROCS, m.Kernel, load, m.GoVersion,
		r.Duration, peerList(r.Peers), r.Count)
}

// WriteText prints the report as aligned columns.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s\n\n", r.summary())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "group\tcase\tours\tpeer\tratio\ttarget")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s: %s\t%s\t%s\t%s\n", row.Group, row.Name, row.Ours, fmtSample(row.OursMed, row.Metric),
			row.peerText(), row.ratioText(), row.targetText())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	r.writeScaleText(w)
	return nil
}

func peerList(m map[string]string) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+" "+m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// WriteMarkdown prints the report as Markdown; svg, when set, is the
// chart's path relative to where the Markdown goes.
func (r *Report) WriteMarkdown(w io.Writer, svg string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n\n", r.summary())
	fmt.Fprintf(&b, "`%s`\n\n", r.Command)
	if svg != "" {
		fmt.Fprintf(&b, "![Each targeted row's ratio (peer time ÷ ours, log scale) against its target](%s)\n\n", svg)
	}
	b.WriteString("| group | case | ours | peer | ratio (min–max) | target |\n| --- | --- | --- | --- | ---: | --- |\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s: %s | %s | %s | %s |\n", row.Group, cell(row.Name), row.Ours,
			cell(fmtSample(row.OursMed, row.Metric)), cell(row.peerText()), row.ratioText(), row.targetText())
	}
	b.WriteString("\n")
	if r.ScaleSkipped != "" {
		fmt.Fprintf(&b, "Scale: skipped: %s\n", r.ScaleSkipped)
	} else if len(r.Scale) > 0 {
		b.WriteString("Scale: N QMP client connections in the report's process to one qmp/qmptest server in a child process; client memory (live heap + stacks) per idle connection, target ≤ 16 KiB. The memory figure has a noise floor of about ±2 KiB per connection at 100 connections (the runtime reuses stacks and heap an earlier step freed); read the 1,000 and 10,000 rows.\n\n")
		b.WriteString("| scale: driver | connections | connect all | client memory per connection | goroutines | executes/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.Scale {
			if s.Skipped != "" {
				fmt.Fprintf(&b, "| %s | %d | skipped: %s | | | |\n", s.Driver, s.Conns, s.Skipped)
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %.1f KiB | %d | %.0f |\n", s.Driver, s.Conns,
				time.Duration(s.ConnectNs).Round(time.Millisecond), s.BytesPerConn/1024, s.Goroutines, s.ExecutesPerSec)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Files written by WriteFiles.
const (
	MarkdownFile = "report.md"
	JSONFile     = "report.json"
	SVGFile      = "report.svg"
)

// WriteFiles writes report.md, report.json and report.svg into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md, SVGFile); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, MarkdownFile), md.Bytes(), 0o644); err != nil {
		return err
	}
	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, SVGFile), svg.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, JSONFile), append(js, '\n'), 0o644)
}

// ReadJSON reads a report written by WriteFiles.
func ReadJSON(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// The markers around README's generated block.
const (
	ReadmeBegin = "<!-- bench:begin: generated by go run ./bench/cmd/report -readme README.md; do not edit by hand -->"
	ReadmeEnd   = "<!-- bench:end -->"
)

// ErrNoMarkers is returned by RewriteReadme for a file without the
// markers.
var ErrNoMarkers = errors.New("no bench markers (" + ReadmeBegin + " … " + ReadmeEnd + ")")

// RewriteReadme replaces the block between the markers of the Markdown file
// at path with the report, the chart at svg (relative to that file).
func (r *Report) RewriteReadme(path, svg string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin := bytes.Index(old, []byte(ReadmeBegin))
	end := bytes.Index(old, []byte(ReadmeEnd))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: %w", path, ErrNoMarkers)
	}
	var b bytes.Buffer
	b.Write(old[:begin+len(ReadmeBegin)])
	b.WriteString("\n\n")
	if err := r.WriteMarkdown(&b, svg); err != nil {
		return err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.Write(old[end:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (r *Report) writeScaleText(w io.Writer) {
	if r.ScaleSkipped != "" {
		fmt.Fprintf(w, "scale: skipped: %s\n\n", r.ScaleSkipped)
		return
	}
	if len(r.Scale) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scale: driver\tconnections\tconnect all\tclient memory/conn (≤ 16 KiB)\tgoroutines\texecutes/s")
	for _, s := range r.Scale {
		if s.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%d\tskipped: %s\t\t\t\n", s.Driver, s.Conns, s.Skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%.1f KiB\t%d\t%.0f\n", s.Driver, s.Conns,
			time.Duration(s.ConnectNs).Round(time.Millisecond), s.BytesPerConn/1024, s.Goroutines, s.ExecutesPerSec)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
