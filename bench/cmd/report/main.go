// Command report measures every layer of wirereactor beside its peers in one
// run and prints medians, ratios and verdicts; it also writes them as
// Markdown, JSON and an SVG chart (bench/results/report.md, report.json,
// report.svg) and, with -readme, rewrites README's generated block.
//
//	go run ./bench/cmd/report                     # the full run: several minutes on 2 cores
//	go run ./bench/cmd/report -readme README.md   # the same, then README's table and chart
//	go run ./bench/cmd/report -quick              # CI-sized
//	go run ./bench/cmd/report -from bench/results/report.json -readme README.md   # re-render only
//
// Peers it cannot find (Mercurial, QEMU, the bench/peers module) are
// reported as skipped, never as a figure.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirereactor/wirereactor/bench/internal/harness"
)

func main() {
	harness.ServeChildIfAsked()
	testing.Init() // testing.Benchmark reads the -test.* flags
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command with its arguments and outputs, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flag := flag.NewFlagSet("report", flag.ContinueOnError)
	flag.SetOutput(stderr)
	def := harness.DefaultConfig()
	quick := flag.Bool("quick", false, "CI-sized run: 2 repetitions, 20ms samples, scale at 100 connections")
	count := flag.Int("count", 0, fmt.Sprintf("repetitions per side (default %d, %d with -quick)", def.Count, harness.QuickConfig().Count))
	benchtime := flag.Duration("benchtime", 0, fmt.Sprintf("time per sample (default %v)", def.BenchTime))
	only := flag.String("only", "", "comma-separated sections to run: frame,reactor,qmp,transport,scale (default all)")
	scale := flag.String("scale", "", "comma-separated connection counts for the scale runs (default 100,1000,10000)")
	out := flag.String("out", "bench/results", "directory for report.md, report.json and report.svg (empty: do not write)")
	python := flag.String("python", "/usr/bin/python3", "Python with Mercurial importable")
	qemu := flag.String("qemu", "qemu-system-x86_64", "QEMU binary")
	gobin := flag.String("go", "go", `go command that builds the bench/peers module ("none": skip those peers)`)
	readme := flag.String("readme", "", "Markdown file whose block between the bench markers is rewritten with the report")
	from := flag.String("from", "", "render this report.json instead of measuring")
	verbose := flag.Bool("v", false, "log each repetition")
	if err := flag.Parse(args); err != nil {
		return 2
	}

	cfg := def
	if *quick {
		cfg = harness.QuickConfig()
	}
	if *count > 0 {
		cfg.Count = *count
	}
	if *benchtime > 0 {
		cfg.BenchTime = *benchtime
	}
	if *scale != "" {
		cfg.ScaleSteps = nil
		for s := range strings.SplitSeq(*scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fmt.Fprintf(stderr, "report: bad -scale %q\n", *scale)
				return 2
			}
			cfg.ScaleSteps = append(cfg.ScaleSteps, n)
		}
	}
	cfg.Python, cfg.QEMU, cfg.Go = *python, *qemu, *gobin
	cfg.Log = func(format string, args ...any) {
		if *verbose || !strings.HasPrefix(format, "  ") {
			fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
		}
	}
	sec := harness.AllSections
	if *only != "" {
		sec = harness.Sections{}
		for s := range strings.SplitSeq(*only, ",") {
			switch strings.TrimSpace(s) {
			case "frame":
				sec.Frame = true
			case "reactor":
				sec.Reactor = true
			case "qmp":
				sec.QMP = true
			case "transport":
				sec.Transport = true
			case "scale":
				sec.Scale = true
			default:
				fmt.Fprintf(stderr, "report: unknown section %q\n", s)
				return 2
			}
		}
	}

	var r *harness.Report
	if *from != "" {
		var err error
		if r, err = harness.ReadJSON(*from); err != nil {
			fmt.Fprintln(stderr, "report:", err)
			return 1
		}
	} else {
		r = harness.Run(ctx, cfg, sec)
		// The command that reproduces the figures: the arguments minus
		// those that only change logging or where the outputs go.
		r.Command = reproduce(args)
	}
	if err := r.WriteText(stdout); err != nil {
		fmt.Fprintln(stderr, "report:", err)
		return 1
	}
	if *out != "" {
		if err := r.WriteFiles(*out); err != nil {
			fmt.Fprintln(stderr, "report:", err)
			return 1
		}
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join([]string{filepath.Join(*out, harness.MarkdownFile),
			harness.JSONFile, harness.SVGFile}, ", "))
	}
	if *readme != "" {
		svg := ""
		if *out != "" {
			rel, err := filepath.Rel(filepath.Dir(*readme), filepath.Join(*out, harness.SVGFile))
			if err == nil {
				svg = filepath.ToSlash(rel)
			}
		}
		if err := r.RewriteReadme(*readme, svg); err != nil {
			fmt.Fprintln(stderr, "report:", err)
			return 1
		}
		fmt.Fprintf(stderr, "rewrote %s\n", *readme)
	}
	return 0
}

// reproduce is the command line that measures the same: args without the
// flags that only choose logging and where the outputs go.
func reproduce(args []string) string {
	kept := []string{"go", "run", "./bench/cmd/report"}
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		name, _, hasValue := strings.Cut(a, "=")
		switch name {
		case "v":
			continue
		case "out", "readme", "from":
			if !hasValue {
				i++ // its value
			}
			continue
		}
		kept = append(kept, args[i])
	}
	return strings.Join(kept, " ")
}
