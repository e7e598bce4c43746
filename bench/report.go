package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured, and where.
type Report struct {
	Started  time.Time         `json:"started"`
	Duration string            `json:"duration"`
	Command  string            `json:"command"`
	Machine  Machine           `json:"machine"`
	Peers    map[string]string `json:"peers"`
	Count    int               `json:"count"`
	Rows     []Row             `json:"rows"`
	Scale    []ScaleRow        `json:"scale,omitempty"`
	// ScaleSkipped says why the scale runs did not run, when they did not.
	ScaleSkipped string `json:"scale_skipped,omitempty"`
}

// Machine describes where the report ran.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// LoadAvg is /proc/loadavg when the run started: other work on the
	// machine moves absolute figures (ratios less so).
	LoadAvg string `json:"loadavg"`
}

var (
	peersMu sync.Mutex
	peers   = map[string]string{}
)

// recordPeer notes the version of a peer the run used.
func recordPeer(name, version string) {
	peersMu.Lock()
	peers[name] = version
	peersMu.Unlock()
}

func peerVersions() map[string]string {
	peersMu.Lock()
	defer peersMu.Unlock()
	m := map[string]string{}
	for k, v := range peers {
		m[k] = v
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "golang.org/x/net" {
				m["golang.org/x/net"] = d.Version
			}
		}
	}
	return m
}

// ThisMachine reads the CPU model, cores and kernel.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		m.LoadAvg = strings.Join(f[:min(3, len(f))], " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// Sections are the parts of the report, in the order they run.
type Sections struct {
	Frame, Reactor, QMP, Transport, Scale bool
}

// AllSections runs everything.
var AllSections = Sections{Frame: true, Reactor: true, QMP: true, Transport: true, Scale: true}

// Run measures the selected sections.
func Run(ctx context.Context, cfg Config, sec Sections) *Report {
	r := &Report{Started: time.Now().UTC(), Machine: ThisMachine(), Count: cfg.Count}
	var cs []Comparison
	if sec.Frame {
		cs = append(cs, FrameComparisons()...)
	}
	if sec.Reactor {
		cs = append(cs, ReactorComparisons()...)
	}
	if sec.QMP {
		cs = append(cs, QMPComparisons()...)
	}
	if sec.Transport {
		cs = append(cs, TransportComparisons()...)
	}
	for _, c := range cs {
		cfg.logf("%s: %s", c.Group, c.Name)
		r.Rows = append(r.Rows, Compare(ctx, cfg, c))
	}
	if sec.Scale {
		cfg.logf("scale: %v connections", cfg.ScaleSteps)
		r.Scale, r.ScaleSkipped = RunScale(ctx, cfg)
	}
	r.Peers = peerVersions()
	r.Duration = time.Since(r.Started).Round(time.Second).String()
	return r
}

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
	return out
}

func (r Row) ratioText() string {
	if r.Skipped != "" {
		return "skipped"
	}
	return fmt.Sprintf("%.2f×", r.Ratio)
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

// WriteText prints the report as aligned columns.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "wirereactor bench — %s, %d cores, %s, %s, load %s; median of %d; ratio = peer time ÷ our time (>1: we are faster), CPU time where the row says CPU\n\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.GoVersion, r.Machine.LoadAvg, r.Count)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "group\tcase\tours\tpeer\tratio\ttarget")
	for _, row := range r.Rows {
		peer := row.Peer + ": " + fmtSample(row.PeerMed, row.Metric)
		if row.Skipped != "" {
			peer = "skipped: " + row.Skipped
		}
		fmt.Fprintf(tw, "%s\t%s\t%s: %s\t%s\t%s\t%s\n", row.Group, row.Name, row.Ours, fmtSample(row.OursMed, row.Metric),
			peer, row.ratioText(), row.targetText())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	r.writeScaleText(w)
	fmt.Fprintf(w, "peers: %s; took %s\n", peerList(r.Peers), r.Duration)
	return nil
}

func peerList(m map[string]string) string {
	var parts []string
	for _, k := range []string{"Mercurial", "Python", "QEMU", "golang.org/x/net"} {
		if v, ok := m[k]; ok {
			parts = append(parts, k+" "+v)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// WriteMarkdown prints the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, %s, load average %s at start), %s; peers: %s. Median of %d runs; ratio = peer time ÷ our time, so above 1 we are faster; rows marked CPU compare process CPU time per op (single-threaded in-memory work on a loaded machine), the others wall time.\n\n",
		r.Started.Format("2006-01-02"), r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.LoadAvg, r.Machine.GoVersion, peerList(r.Peers), r.Count)
	fmt.Fprintf(&b, "`%s`\n\n", r.Command)
	b.WriteString("| group | case | ours | peer | ratio | target |\n| --- | --- | --- | --- | ---: | --- |\n")
	for _, row := range r.Rows {
		peer := row.Peer + ": " + fmtSample(row.PeerMed, row.Metric)
		if row.Skipped != "" {
			peer = "skipped: " + row.Skipped
		}
		fmt.Fprintf(&b, "| %s | %s | %s: %s | %s | %s | %s |\n", row.Group, row.Name, row.Ours,
			fmtSample(row.OursMed, row.Metric), strings.ReplaceAll(peer, "|", "\\|"), row.ratioText(), row.targetText())
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

// WriteFiles writes report.md and report.json into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644)
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
