package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// peerProgram is the bench/peers module built once per run: third-party
// clients and libraries measured in their own process, so that the
// library's go.mod never names them.
type peerProgram struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

var peersBin peerProgram

// build builds bench/peers with cfg.Go into a temporary directory.
func (p *peerProgram) build(ctx context.Context, cfg Config) (string, error) {
	p.once.Do(func() {
		gobin := cfg.Go
		if gobin == "none" {
			p.err = Skip("bench/peers not built (-go none)")
			return
		}
		if gobin == "" {
			gobin = "go"
		}
		if _, err := exec.LookPath(gobin); err != nil {
			p.err = Skip("go command " + gobin + " not found to build bench/peers")
			return
		}
		src, err := inSourceTree("bench", "peers", "go.mod")
		if err != nil {
			p.err = err
			return
		}
		if p.dir, err = os.MkdirTemp("", "wirereactor-peers"); err != nil {
			p.err = err
			return
		}
		p.bin = filepath.Join(p.dir, "peers")
		cmd := exec.CommandContext(ctx, gobin, "build", "-o", p.bin, ".")
		cmd.Dir = filepath.Dir(src)
		cmd.Env = append(os.Environ(), "GOWORK=off")
		cfg.logf("building bench/peers")
		if out, err := cmd.CombinedOutput(); err != nil {
			p.err = Skip(fmt.Sprintf("bench/peers did not build: %v: %s", err, bytes.TrimSpace(out)))
			return
		}
		p.recordVersions(ctx, gobin, filepath.Dir(src))
	})
	return p.bin, p.err
}

// recordVersions notes the versions of the modules bench/peers uses.
func (p *peerProgram) recordVersions(ctx context.Context, gobin, dir string) {
	cmd := exec.CommandContext(ctx, gobin, "list", "-m", "-f", "{{.Path}} {{.Version}}",
		"github.com/digitalocean/go-qemu", "github.com/kata-containers/govmm",
		"github.com/coder/websocket", "github.com/gorilla/websocket")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if path, v, ok := strings.Cut(line, " "); ok {
			recordPeer(path, v)
		}
	}
}

// cleanup removes the built program.
func (p *peerProgram) cleanup() {
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
	*p = peerProgram{}
}

// peerResult is what the peers program prints.
type peerResult struct {
	NsPerOp     float64 `json:"ns_per_op"`
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	MBPerS      float64 `json:"mb_per_s"`
	Ops         int64   `json:"ops"`
	Counted     bool    `json:"counted"`
	Errors      int64   `json:"errors"`
	Crossed     int64   `json:"crossed"`
	FirstError  string  `json:"first_error"`
}

// peerTimeout bounds one measurement in another process.
func peerTimeout(cfg Config) time.Duration { return 30*time.Second + 20*cfg.BenchTime }

// runPeer runs the peers program with args (after -time) and returns its
// measurement.
func runPeer(ctx context.Context, cfg Config, args ...string) (Sample, error) {
	bin, err := peersBin.build(ctx, cfg)
	if err != nil {
		return Sample{}, err
	}
	args = append(args, "-time", cfg.BenchTime.String())
	// A peer that hangs (a reply it never matches, say) fails its row.
	ctx, cancel := context.WithTimeout(ctx, peerTimeout(cfg))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no result within %v", peerTimeout(cfg))
		}
		return Sample{}, fmt.Errorf("peers %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	var r peerResult
	if err := json.Unmarshal(out, &r); err != nil {
		return Sample{}, fmt.Errorf("peers output %q: %w", out, err)
	}
	if r.NsPerOp <= 0 {
		return Sample{}, errors.New("peers printed no timing")
	}
	return Sample{NsPerOp: r.NsPerOp, CPUNsPerOp: r.CPUNsPerOp, AllocsPerOp: r.AllocsPerOp, BytesPerOp: r.BytesPerOp,
		MBPerS: r.MBPerS, HasAllocs: true, Counted: r.Counted, Errors: r.Errors, Crossed: r.Crossed, FirstError: r.FirstError}, nil
}
