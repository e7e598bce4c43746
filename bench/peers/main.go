// Command peers runs the third-party peers of go run ./bench/cmd/report in a
// process of their own, so that the library's go.mod never names them: QMP
// clients a user would pick instead of qmp.Client (an id-multiplexing raw
// client, github.com/digitalocean/go-qemu, github.com/kata-containers/govmm)
// and the WebSocket libraries beside transport/ws
// (github.com/coder/websocket, github.com/gorilla/websocket).
//
// The report builds this module and runs one measurement per process:
//
//	peers qmp -client raw|go-qemu|govmm -socket PATH -workers 8 -time 300ms
//	peers ws -lib coder|gorilla -mode rt|bulk -time 300ms
//
// and reads one JSON line: time, process CPU time and allocations per op,
// and for QMP how many calls failed and how many returned the reply to
// another caller's command ("crossed"). It warms up for a tenth of -time
// before measuring.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// result is what one measurement prints.
type result struct {
	NsPerOp     float64 `json:"ns_per_op"`
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	MBPerS      float64 `json:"mb_per_s,omitempty"`
	Ops         int64   `json:"ops"`
	// Counted says Errors and Crossed were counted (QMP clients).
	Counted    bool   `json:"counted,omitempty"`
	Errors     int64  `json:"errors"`
	Crossed    int64  `json:"crossed"`
	FirstError string `json:"first_error,omitempty"`
	Version    string `json:"version,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: peers qmp|ws [flags]")
	}
	var r result
	var err error
	switch os.Args[1] {
	case "qmp":
		r, err = runQMP(os.Args[2:])
	case "ws":
		r, err = runWS(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fatalf("%v", err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peers: "+format+"\n", args...)
	os.Exit(1)
}

func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ContinueOnError)
}

// cpuNow is this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meter measures one window: wall and CPU time and allocations.
type meter struct {
	start    time.Time
	cpu      time.Duration
	mallocs  uint64
	allocced uint64
}

func startMeter() meter {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return meter{start: time.Now(), cpu: cpuNow(), mallocs: ms.Mallocs, allocced: ms.TotalAlloc}
}

// stop fills r's per-op figures for ops operations of bytesPerOp bytes.
func (m meter) stop(r *result, ops int64, bytesPerOp int) {
	wall, cpu := time.Since(m.start), cpuNow()-m.cpu
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.Ops = ops
	if ops == 0 {
		return
	}
	n := float64(ops)
	r.NsPerOp = float64(wall.Nanoseconds()) / n
	r.CPUNsPerOp = float64(cpu.Nanoseconds()) / n
	r.AllocsPerOp = float64(ms.Mallocs-m.mallocs) / n
	r.BytesPerOp = float64(ms.TotalAlloc-m.allocced) / n
	if bytesPerOp > 0 {
		r.MBPerS = float64(bytesPerOp) * n / 1e6 / wall.Seconds()
	}
}
