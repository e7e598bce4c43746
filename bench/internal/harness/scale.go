package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wirereactor/wirereactor/bench/internal/qmpconn"
	"github.com/wirereactor/wirereactor/bench/internal/responder"
	"github.com/wirereactor/wirereactor/examples/eventloop"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
)

// ScaleRow is one scale measurement: N client connections in this process
// to one qmp/qmptest server in a child process.
//
// The server runs apart because both ends of 10,000 connections need
// 20,000 descriptors, more than this machine's hard limit lets one process
// hold without CAP_SYS_RESOURCE; apart, the memory figures are the
// client's alone.
type ScaleRow struct {
	Driver string `json:"driver"`
	Conns  int    `json:"conns"`
	// ConnectNs is the time to dial every connection and finish every
	// handshake (greeting, qmp_capabilities).
	ConnectNs int64 `json:"connect_ns"`
	// BytesPerConn is the client's live heap plus goroutine stacks per idle
	// connection, after the handshake.
	BytesPerConn float64 `json:"bytes_per_conn"`
	// Goroutines is how many goroutines the connections added.
	Goroutines int `json:"goroutines"`
	// ExecutesPerSec is the rate of query-status executes with every
	// connection executing at once, one command in flight on each.
	ExecutesPerSec float64 `json:"executes_per_sec"`
	Executes       int64   `json:"executes"`
	Skipped        string  `json:"skipped,omitempty"`
}

// scaleDriver connects n clients to path, reports when they are all ready,
// then runs executes on all of them until the deadline.
type scaleDriver struct {
	name    string
	connect func(ctx context.Context, path string, n int) (scaleConns, error)
}

type scaleConns interface {
	// execute runs executes on every connection until deadline and returns
	// how many completed.
	execute(deadline time.Time) (int64, error)
	close()
}

var scaleDrivers = []scaleDriver{
	{"qmpclient.Client (transport.Session)", connectClients},
	{"minimal goroutine per connection (qmpconn)", connectGoroutines},
	{"one goroutine, epoll (examples/eventloop)", connectEventLoop},
}

// RunScale measures each driver at each of cfg.ScaleSteps connections.
func RunScale(ctx context.Context, cfg Config) ([]ScaleRow, string) {
	maxN := 0
	for _, n := range cfg.ScaleSteps {
		maxN = max(maxN, n)
	}
	if err := raiseFDLimit(uint64(maxN + 1024)); err != nil {
		return nil, fmt.Sprintf("cannot raise the file descriptor limit to %d: %v", maxN+1024, err)
	}
	dur := 2 * time.Second
	if cfg.Quick {
		dur = 200 * time.Millisecond
	}
	var rows []ScaleRow
	baseline := runtime.NumGoroutine()
	for _, n := range cfg.ScaleSteps {
		for _, d := range scaleDrivers {
			if ctx.Err() != nil {
				return rows, "cancelled"
			}
			row := scaleOnce(ctx, d, n, dur, baseline)
			cfg.logf("  %s, %d connections: connect %v, %.1f KiB/conn, %.0f executes/s %s",
				d.name, n, time.Duration(row.ConnectNs).Round(time.Millisecond), row.BytesPerConn/1024, row.ExecutesPerSec, row.Skipped)
			rows = append(rows, row)
		}
	}
	return rows, ""
}

func scaleOnce(ctx context.Context, d scaleDriver, n int, dur time.Duration, baseline int) ScaleRow {
	row := ScaleRow{Driver: d.name, Conns: n}
	srv, err := startChild(ctx, childQMPTest)
	if err != nil {
		row.Skipped = "server: " + err.Error()
		return row
	}
	defer srv.stop()
	path := srv.path

	settle(baseline)
	g0 := runtime.NumGoroutine()
	m0 := liveBytes()
	start := time.Now()
	conns, err := d.connect(ctx, path, n)
	if err != nil {
		row.Skipped = "connect: " + err.Error()
		return row
	}
	defer conns.close()
	row.ConnectNs = time.Since(start).Nanoseconds()
	row.BytesPerConn = float64(liveBytes()-m0) / float64(n)
	row.Goroutines = runtime.NumGoroutine() - g0

	start = time.Now()
	done, err := conns.execute(start.Add(dur))
	if err != nil {
		row.Skipped = "execute: " + err.Error()
		return row
	}
	row.Executes = done
	row.ExecutesPerSec = float64(done) / time.Since(start).Seconds()
	return row
}

// settle waits (up to 5 s) for the goroutines of an earlier step to exit,
// so their stacks and buffers are not counted against the next one.
func settle(baseline int) {
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > baseline && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// liveBytes is the live heap plus goroutine stacks after a full GC.
func liveBytes() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

func raiseFDLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = want
	if lim.Max < want {
		lim.Max = want // needs CAP_SYS_RESOURCE
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// goroutineConns: qmpconn, one reader goroutine per connection.
type goroutineConns []*qmpconn.Conn

func connectGoroutines(ctx context.Context, path string, n int) (scaleConns, error) {
	conns, err := dialAll(n, func() (*qmpconn.Conn, error) { return qmpconn.Dial(ctx, "unix", path) })
	if err != nil {
		goroutineConns(conns).close()
		return nil, err
	}
	return goroutineConns(conns), nil
}

func (cs goroutineConns) execute(deadline time.Time) (int64, error) {
	ctx := context.Background()
	return executeAll(cs, deadline, func(c *qmpconn.Conn) error {
		_, err := c.Execute(ctx, "query-status", nil)
		return err
	})
}

func (cs goroutineConns) close() {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

// loopConns: examples/eventloop, every connection on the calling goroutine.
type loopConns struct {
	l   *eventloop.Loop
	ids []int
}

func connectEventLoop(_ context.Context, path string, n int) (scaleConns, error) {
	l, err := eventloop.New()
	if err != nil {
		return nil, err
	}
	lc := &loopConns{l: l, ids: make([]int, 0, n)}
	for range n {
		id, err := l.Dial(path)
		if err != nil {
			l.Close()
			return nil, err
		}
		lc.ids = append(lc.ids, id)
		// Serve what is ready as we go, so greetings do not pile up.
		if _, err := l.Poll(0); err != nil {
			l.Close()
			return nil, err
		}
	}
	for l.Ready() < n {
		got, err := l.Poll(5000)
		if err != nil || got == 0 && l.Ready() < n {
			l.Close()
			return nil, fmt.Errorf("%d of %d connections ready: %v", l.Ready(), n, err)
		}
	}
	return lc, nil
}

func (lc *loopConns) execute(deadline time.Time) (int64, error) {
	var total int64
	var firstErr error
	inflight := 0
	var issue func(id int)
	issue = func(id int) {
		inflight++
		err := lc.l.Execute(id, "query-status", nil, func(r qmp.Response, err error) {
			inflight--
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err != nil {
				return
			}
			total++
			if time.Now().Before(deadline) {
				issue(id)
			}
		})
		if err != nil {
			inflight--
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	for _, id := range lc.ids {
		issue(id)
	}
	for inflight > 0 && firstErr == nil {
		if _, err := lc.l.Poll(5000); err != nil {
			return total, err
		}
	}
	return total, firstErr
}

func (lc *loopConns) close() { lc.l.Close() }

// The child processes the report starts by re-executing itself: childEnv
// names the kind and the socket to serve, as kind:path.
const (
	childEnv = "WIREREACTOR_BENCH_CHILD"
	// childQMPTest serves qmp/qmptest (the scale runs' server).
	childQMPTest = "qmptest"
	// childResponder serves bench/internal/responder (the QMP rows').
	childResponder = "responder"
)

// ServeChildIfAsked turns this process into one of the report's servers
// when it was started as one (the report re-executes itself): it serves
// on the socket named in the environment until its stdin closes, then
// exits. Programs that run the report call it first thing in main (and
// TestMain).
func ServeChildIfAsked() {
	kind, path, ok := strings.Cut(os.Getenv(childEnv), ":")
	if !ok {
		return
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, kind+" server:", err)
		os.Exit(1)
	}
	var stop func()
	switch kind {
	case childQMPTest:
		s := serveQMP(ln)
		stop = func() { s.Close() }
	case childResponder:
		var s responder.Server
		done := make(chan struct{})
		go func() { s.Serve(ln); close(done) }()
		stop = func() { s.Close(); ln.Close(); <-done }
	default:
		fmt.Fprintln(os.Stderr, "unknown server kind", kind)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	stop()
	os.Exit(0)
}

type childServer struct {
	path string
	stop func()
}

// startChild re-executes this program as a server of kind.
func startChild(ctx context.Context, kind string) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wirereactor-bench")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "qmp.sock")
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+kind+":"+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			cmd.Process.Kill()
		}
		os.RemoveAll(dir)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		stop()
		return nil, fmt.Errorf("server process did not start (%q, %v); does main call harness.ServeChildIfAsked?", line, err)
	}
	return &childServer{path: path, stop: stop}, nil
}

// clientConns: qmpclient.Client, a transport.Session (read and write loops) each.
type clientConns []*qmpclient.Client

func connectClients(ctx context.Context, path string, n int) (scaleConns, error) {
	conns, err := dialAll(n, func() (*qmpclient.Client, error) { return dialClient(ctx, path) })
	if err != nil {
		clientConns(conns).close()
		return nil, err
	}
	return clientConns(conns), nil
}

func (cs clientConns) execute(deadline time.Time) (int64, error) {
	ctx := context.Background()
	return executeAll(cs, deadline, func(c *qmpclient.Client) error {
		_, err := c.Execute(ctx, "query-status", nil)
		return err
	})
}

func (cs clientConns) close() {
	ctx := context.Background()
	for _, c := range cs {
		if c != nil {
			c.Disconnect(ctx)
		}
	}
}

// ScaleDriverNames lists the drivers the scale runs measure, in order.
func ScaleDriverNames() []string {
	names := make([]string, len(scaleDrivers))
	for i, d := range scaleDrivers {
		names[i] = d.name
	}
	return names
}

// dialAll dials n connections, 64 at a time: handshakes are round trips, and
// many dialers keep them overlapping, as the event loop's do. After the first
// error it dials no more and returns that error with what it has dialed
// (unset entries are zero) for the caller to close.
func dialAll[C any](n int, dial func() (C, error)) ([]C, error) {
	conns := make([]C, n)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				c, err := dial()
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return conns, *p
	}
	return conns, nil
}

// executeAll runs execute on every connection at once, one call in flight on
// each, until deadline or the first error, and returns how many completed.
func executeAll[C any](conns []C, deadline time.Time, execute func(C) error) (int64, error) {
	var total atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := execute(c); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return total.Load(), *p
	}
	return total.Load(), nil
}
