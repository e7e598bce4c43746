package harness

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
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
	// LoadEnd is /proc/loadavg when the run ended.
	LoadEnd string     `json:"loadavg_end,omitempty"`
	Rows    []Row      `json:"rows"`
	Scale   []ScaleRow `json:"scale,omitempty"`
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
	defer peersBin.cleanup()
	for _, c := range cs {
		cfg.logf("%s: %s", c.Group, c.Name)
		r.Rows = append(r.Rows, Compare(ctx, cfg, c)...)
	}
	if sec.Scale {
		cfg.logf("scale: %v connections", cfg.ScaleSteps)
		r.Scale, r.ScaleSkipped = RunScale(ctx, cfg)
	}
	r.Peers = peerVersions()
	r.Duration = time.Since(r.Started).Round(time.Second).String()
	r.LoadEnd = ThisMachine().LoadAvg
	return r
}
