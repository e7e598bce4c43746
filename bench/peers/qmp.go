package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goqemu "github.com/digitalocean/go-qemu/qmp"
	govmm "github.com/kata-containers/govmm/qemu"
)

// qmpClient is one connection of a client under measurement; call runs
// command cmd (query-status or query-name) and returns its reply's text.
type qmpClient interface {
	call(ctx context.Context, cmd string) ([]byte, error)
	close()
}

// command is a call the driver makes and how it knows the reply is its own.
type command struct{ name, key, otherKey string }

// commands alternate so that a reply handed to the wrong caller shows:
// each has a key the other's reply lacks.
var commands = []command{
	{"query-status", `"status"`, `"name"`},
	{"query-name", `"name"`, `"status"`},
}

func runQMP(args []string) (result, error) {
	fs := newFlags("qmp")
	client := fs.String("client", "raw", "raw, go-qemu or govmm")
	socket := fs.String("socket", "", "QMP server's unix socket")
	workers := fs.Int("workers", 8, "goroutines calling at once on the one connection")
	d := fs.Duration("time", 300*time.Millisecond, "measuring time")
	if err := fs.Parse(args); err != nil {
		return result{}, err
	}
	ctx := context.Background()
	var c qmpClient
	var err error
	cmds := commands
	switch *client {
	case "raw":
		c, err = dialMux(*socket)
	case "go-qemu":
		c, err = dialGoQEMU(*socket)
	case "govmm":
		c, err = dialGovmm(ctx, *socket)
		cmds = commands[:1] // govmm has no raw command call
	default:
		return result{}, fmt.Errorf("unknown client %q", *client)
	}
	if err != nil {
		return result{}, fmt.Errorf("%s: connect: %w", *client, err)
	}
	defer c.close()

	r := result{Counted: true}
	// Warm up, then measure; a worker stops at its first error (the
	// connection may be gone), which is counted and the first reported.
	drive(ctx, c, cmds, *workers, *d/10, &result{})
	m := startMeter()
	ops := drive(ctx, c, cmds, *workers, *d, &r)
	m.stop(&r, ops, 0)
	if ops == 0 {
		return r, fmt.Errorf("%s: no call succeeded: %s", *client, r.FirstError)
	}
	return r, nil
}

// drive runs calls on workers goroutines until d has passed and returns how
// many succeeded; errors and crossed replies are added to r.
func drive(ctx context.Context, c qmpClient, cmds []command, workers int, d time.Duration, r *result) int64 {
	deadline := time.Now().Add(d)
	var ops, errs, crossed atomic.Int64
	var first atomic.Pointer[string]
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline); i++ {
				cmd := cmds[i%len(cmds)]
				reply, err := c.call(ctx, cmd.name)
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					first.CompareAndSwap(nil, &msg)
					return
				}
				if !bytes.Contains(reply, []byte(cmd.key)) || bytes.Contains(reply, []byte(cmd.otherKey)) {
					crossed.Add(1)
					continue
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	r.Errors += errs.Load()
	r.Crossed += crossed.Load()
	if p := first.Load(); p != nil && r.FirstError == "" {
		r.FirstError = *p
	}
	return ops.Load()
}

// muxClient is the id-multiplexing raw client a person writes when many
// goroutines share one connection: every command carries a fresh id and is
// written at once; one reader goroutine hands each reply to the caller
// waiting for its id.
type muxClient struct {
	c       net.Conn
	wmu     sync.Mutex // serialises writes
	mu      sync.Mutex // guards pending, next, err
	pending map[uint64]chan []byte
	next    uint64
	err     error
	done    chan struct{}
}

func dialMux(path string) (*muxClient, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	if _, err := r.ReadBytes('\n'); err != nil { // the greeting
		c.Close()
		return nil, err
	}
	if _, err := c.Write([]byte(`{"execute": "qmp_capabilities"}` + "\n")); err != nil {
		c.Close()
		return nil, err
	}
	if line, err := r.ReadBytes('\n'); err != nil || !bytes.Contains(line, []byte(`"return"`)) {
		c.Close()
		return nil, fmt.Errorf("qmp_capabilities: %q %v", line, err)
	}
	m := &muxClient{c: c, pending: map[uint64]chan []byte{}, done: make(chan struct{})}
	go m.read(r)
	return m, nil
}

var idKey = []byte(`"id":`)

func (m *muxClient) read(r *bufio.Reader) {
	defer close(m.done)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			m.mu.Lock()
			m.err = err
			for id, ch := range m.pending {
				close(ch)
				delete(m.pending, id)
			}
			m.mu.Unlock()
			return
		}
		// The id is the last member of a reply; events carry none.
		i := bytes.LastIndex(line, idKey)
		if i < 0 {
			continue
		}
		digits := bytes.TrimLeft(line[i+len(idKey):], " ")
		end := 0
		for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
			end++
		}
		id, err := strconv.ParseUint(string(digits[:end]), 10, 64)
		if err != nil {
			continue
		}
		m.mu.Lock()
		ch, ok := m.pending[id]
		delete(m.pending, id)
		m.mu.Unlock()
		if ok {
			ch <- line
		}
	}
}

func (m *muxClient) call(_ context.Context, cmd string) ([]byte, error) {
	ch := make(chan []byte, 1)
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return nil, m.err
	}
	m.next++
	id := m.next
	m.pending[id] = ch
	m.mu.Unlock()
	line := make([]byte, 0, 64)
	line = append(line, `{"execute": "`...)
	line = append(line, cmd...)
	line = append(line, `", "id": `...)
	line = strconv.AppendUint(line, id, 10)
	line = append(line, "}\n"...)
	m.wmu.Lock()
	_, err := m.c.Write(line)
	m.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	reply, ok := <-ch
	if !ok {
		return nil, errors.New("connection closed")
	}
	return reply, nil
}

func (m *muxClient) close() {
	m.c.Close()
	<-m.done
}

// goQEMU is github.com/digitalocean/go-qemu's SocketMonitor.
type goQEMU struct{ mon *goqemu.SocketMonitor }

func dialGoQEMU(path string) (*goQEMU, error) {
	mon, err := goqemu.NewSocketMonitor("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := mon.Connect(); err != nil {
		return nil, err
	}
	return &goQEMU{mon: mon}, nil
}

func (g *goQEMU) call(_ context.Context, cmd string) ([]byte, error) {
	return g.mon.Run([]byte(`{"execute": "` + cmd + `"}`))
}

func (g *goQEMU) close() { g.mon.Disconnect() }

// govmmClient is github.com/kata-containers/govmm's QMP. Its command set is
// fixed (no raw commands), so every call is ExecuteQueryStatus; a reply that
// is not a status shows as an empty Status, returned as "{}" (crossed).
type govmmClient struct {
	q            *govmm.QMP
	disconnected chan struct{}
}

func dialGovmm(ctx context.Context, path string) (*govmmClient, error) {
	disconnected := make(chan struct{})
	q, _, err := govmm.QMPStart(ctx, path, govmm.QMPConfig{}, disconnected)
	if err != nil {
		return nil, err
	}
	if err := q.ExecuteQMPCapabilities(ctx); err != nil {
		q.Shutdown()
		<-disconnected
		return nil, err
	}
	return &govmmClient{q: q, disconnected: disconnected}, nil
}

func (g *govmmClient) call(ctx context.Context, cmd string) ([]byte, error) {
	if cmd != "query-status" {
		return nil, fmt.Errorf("govmm: no call for %s", cmd)
	}
	s, err := g.q.ExecuteQueryStatus(ctx)
	if err != nil {
		return nil, err
	}
	if s.Status == "" {
		return []byte("{}"), nil
	}
	return []byte(`"status": "` + s.Status + `"`), nil
}

func (g *govmmClient) close() {
	g.q.Shutdown()
	<-g.disconnected
}
