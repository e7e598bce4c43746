// Command report measures every layer of wirereactor beside its peers in one
// run and prints medians and ratios; it also writes them as Markdown and JSON
// (bench/results/report.md, report.json).
//
//	go run ./bench/cmd/report           # the full run: a few minutes on 2 cores
//	go run ./bench/cmd/report -quick    # CI-sized
//
// Peers it cannot find (Mercurial, QEMU) are reported as skipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirereactor/wirereactor/bench"
)

func main() {
	bench.ServeChildIfAsked()
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
	def := bench.DefaultConfig()
	quick := flag.Bool("quick", false, "CI-sized run: 2 repetitions, 20ms samples, scale at 100 connections")
	count := flag.Int("count", 0, fmt.Sprintf("repetitions per side (default %d, %d with -quick)", def.Count, bench.QuickConfig().Count))
	benchtime := flag.Duration("benchtime", 0, fmt.Sprintf("time per sample (default %v)", def.BenchTime))
	only := flag.String("only", "", "comma-separated sections to run: frame,reactor,qmp,transport,scale (default all)")
	scale := flag.String("scale", "", "comma-separated connection counts for the scale runs (default 100,1000,10000)")
	out := flag.String("out", "bench/results", "directory for report.md and report.json (empty: do not write)")
	python := flag.String("python", "/usr/bin/python3", "Python with Mercurial importable")
	qemu := flag.String("qemu", "qemu-system-x86_64", "QEMU binary")
	verbose := flag.Bool("v", false, "log each repetition")
	if err := flag.Parse(args); err != nil {
		return 2
	}

	cfg := def
	if *quick {
		cfg = bench.QuickConfig()
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
	cfg.Python, cfg.QEMU = *python, *qemu
	cfg.Log = func(format string, args ...any) {
		if *verbose || !strings.HasPrefix(format, "  ") {
			fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
		}
	}
	sec := bench.AllSections
	if *only != "" {
		sec = bench.Sections{}
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

	r := bench.Run(ctx, cfg, sec)
	// The command that reproduces the figures: the arguments minus -v,
	// which only changes the logging.
	var kept []string
	for _, a := range args {
		if a != "-v" && a != "--v" {
			kept = append(kept, a)
		}
	}
	r.Command = strings.TrimSpace("go run ./bench/cmd/report " + strings.Join(kept, " "))
	if err := r.WriteText(stdout); err != nil {
		fmt.Fprintln(stderr, "report:", err)
		return 1
	}
	if *out != "" {
		if err := r.WriteFiles(*out); err != nil {
			fmt.Fprintln(stderr, "report:", err)
			return 1
		}
		fmt.Fprintf(stderr, "wrote %s/report.md and report.json\n", *out)
	}
	return 0
}
