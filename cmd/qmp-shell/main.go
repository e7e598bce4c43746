// Command qmp-shell is an interactive shell for the QEMU Machine Protocol,
// in the manner of qemu.qmp's qmp-shell.
//
//	qmp-shell [flags] [ADDRESS]
//
// ADDRESS is unix:/path (or a bare /path), tcp:host:port (or host:port),
// ws://host/path or wss://host/path. With --listen ADDRESS the shell waits
// for QEMU to connect (QEMU's -qmp unix:PATH or tcp:HOST:PORT without
// server=on). With no address at all the shell starts a built-in QMP
// simulator — a fake QEMU in the process — and says so on its first line.
//
// Input is qmp-shell syntax:
//
//	query-status
//	object-add qom-type=memory-backend-ram id=mem0 size=1048576
//	blockdev-add driver=null-co node-name=n0 read-zeroes=true
//	blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=4096
//	{"execute": "query-status", "id": "mine"}
//	transaction(
//	  block-dirty-bitmap-add node=n0 name=b0
//	)
//
// Values are JSON (1, true, "text", {…}, […]); anything else is a string.
// Dotted keys build nested objects. A raw JSON command's "id" comes back in
// the reply the shell prints (on the wire the client numbers its commands
// itself). -H sends each line to HMP through human-monitor-command. -c runs
// the given commands and exits (non-zero when one failed); commands are
// also read from a pipe. Replies print on one line; -p indents them.
// --command-timeout stops waiting for a reply after a while.
//
// On a terminal the shell edits lines and keeps history in
// ~/.qmp-shell_history. Tab completes command names (from query-commands),
// argument names and enum values (from query-qmp-schema), transaction
// actions, and with -H HMP commands (from help); a second Tab on an
// ambiguous word lists the choices. Ctrl-C clears the line, or, while a
// command runs, stops waiting for its reply (a late reply is dropped).
// Ctrl-D leaves.
//
// Events print as they arrive, each on a line starting with "event", and
// before the reply of the command that caused them; with --events=enter
// they are held until an empty line is entered, as qemu.qmp's shell does.
//
// For ws:// and wss:// addresses, --token (or $QMP_BRIDGE_TOKEN) is sent
// as a bearer token to qmp-ws-bridge.
//
// --record FILE writes the session — whatever the shell talks to, the
// simulator included — to FILE as a transcript (package transcript: JSON
// Lines, one QMP message per line), which transcript.Read and
// transcript.NewQMPPeer replay in a test without QEMU.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/transport"
	"github.com/wirereactor/wirereactor/transport/endpoint"
	"github.com/wirereactor/wirereactor/transport/tcp"
	"github.com/wirereactor/wirereactor/transport/unix"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageText heads -h. Its examples run on the built-in simulator
// (TestUsageExamplesRun).
const usageText = `usage: qmp-shell [flags] [ADDRESS]

ADDRESS is unix:/path, tcp:host:port, ws://host/path or wss://host/path
(qmp-ws-bridge). With none, qmp-shell talks to its built-in simulator of
QEMU 7.2. Type commands as qemu.qmp's qmp-shell takes them:

  query-status
  object-add qom-type=memory-backend-ram id=mem0 size=1048576
  blockdev-add driver=null-co node-name=n0 read-zeroes=true
  blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=4096
  {"execute": "query-name", "id": 1}
  transaction( block-dirty-bitmap-add node=n0 name=b0 )

Values are JSON (1, true, "text", {...}, [...]) or plain words; dotted keys
build nested objects. On a terminal, Tab completes commands, argument names
and values (a second Tab lists the choices), Ctrl-C clears the line or stops
waiting for a reply, Ctrl-D leaves.

flags:
`

// usageEnv ends -h.
const usageEnv = `
environment:
  QMP_BRIDGE_TOKEN  bearer token for ws:// and wss:// addresses (qmp-ws-bridge --token), when --token is not given
`

// multiFlag collects a repeatable string flag.
type multiFlag []string

// String implements flag.Value.
func (m *multiFlag) String() string { return strings.Join(*m, "; ") }

// Set implements flag.Value: each use adds one.
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

type options struct {
	addr       string
	token      string
	pretty     bool
	cmdTimeout time.Duration
	events     string
	listen     string
	hmp        bool
	commands   multiFlag
	history    string
	verbose    bool
	timeout    time.Duration
	skipNeg    bool
	tlsCA      string
	record     string
}

// run is the whole program, with its streams passed in so tests can run it
// in process. It returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var o options
	fs := flag.NewFlagSet("qmp-shell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		fmt.Fprint(stderr, usageEnv)
	}
	fs.StringVar(&o.listen, "listen", "", "wait for QEMU to connect on `ADDRESS` (unix:/path or tcp:host:port)")
	fs.BoolVar(&o.hmp, "H", false, "HMP mode: send lines to human-monitor-command")
	fs.Var(&o.commands, "c", "run `COMMAND` and exit (repeatable)")
	fs.StringVar(&o.history, "history", defaultHistoryFile(), "history `FILE` for interactive use (empty: none)")
	fs.BoolVar(&o.verbose, "v", false, "print each command before sending it")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "trust the certificates in PEM `FILE` for wss:// (instead of the system's)")
	fs.BoolVar(&o.skipNeg, "N", false, "skip qmp_capabilities (for qemu-ga or an already negotiated monitor)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait to connect")
	fs.BoolVar(&o.pretty, "p", false, "pretty-print replies: indented JSON (default: one line each)")
	fs.DurationVar(&o.cmdTimeout, "command-timeout", 0, "stop waiting for a reply after `DURATION` (0: wait; Ctrl-C stops waiting on a terminal)")
	fs.StringVar(&o.events, "events", "live", "how events print: `MODE` live (as they arrive, before the reply they came with) or enter (held until you enter an empty line, as qemu.qmp's qmp-shell)")
	fs.StringVar(&o.token, "token", "", "bearer `TOKEN` for a ws:// or wss:// address (qmp-ws-bridge --token); default $QMP_BRIDGE_TOKEN")
	fs.StringVar(&o.record, "record", "", "record the session (the simulator's too) in `FILE` as a transcript, one QMP message per line, for transcript.NewQMPPeer to replay")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch fs.NArg() {
	case 0:
	case 1:
		o.addr = fs.Arg(0)
	default:
		fs.Usage()
		return 2
	}
	if o.events != "live" && o.events != "enter" {
		fmt.Fprintf(stderr, "qmp-shell: --events %q: want live or enter\n", o.events)
		return 2
	}
	if o.token == "" {
		o.token = os.Getenv("QMP_BRIDGE_TOKEN")
	}
	if o.addr != "" && o.listen != "" {
		fmt.Fprintln(stderr, "qmp-shell: give an address or --listen, not both")
		return 2
	}

	// The line editor needs a terminal on both sides; otherwise input is
	// read line by line and output carries no prompts or escape codes.
	inFile, _ := stdin.(*os.File)
	outFile, _ := stdout.(*os.File)
	interactive := len(o.commands) == 0 && inFile != nil && outFile != nil &&
		term.IsTerminal(int(inFile.Fd())) && term.IsTerminal(int(outFile.Fd()))

	client := qmpclient.NewClient(qmpclient.Config{Name: "qmp-shell", Logger: discardLogger(),
		Machine: qmp.ClientMachineConfig{SkipNegotiation: o.skipNeg}})
	connectCtx, cancel := context.WithTimeout(ctx, o.timeout)
	var sim *simulator
	var dialer transport.Dialer
	var err error
	switch {
	case o.listen != "":
		dialer, err = listenDialer(o.listen, stderr)
		cancel()
		connectCtx, cancel = context.WithCancel(ctx) // waiting for QEMU has no deadline
	case o.addr == "":
		var conn net.Conn
		sim, conn, err = startSimulator(ctx)
		if err == nil {
			fmt.Fprintln(stderr, "qmp-shell: no address given; talking to the built-in QMP simulator (a fake QEMU 7.2 in this process)")
			dialer = transport.DialFunc(func(context.Context) (net.Conn, error) { return conn, nil })
			defer sim.close()
		}
	default:
		dialer, err = parseAddress(o.addr, o.tlsCA, o.token)
	}
	if err == nil && o.record != "" {
		var finish func() error
		dialer, finish, err = recordDialer(dialer, o.record, o.addr)
		if err != nil {
			cancel()
			fmt.Fprintf(stderr, "qmp-shell: --record: %v\n", err)
			return 1
		}
		// Deferred before Disconnect, so it runs after it: the
		// transcript ends with the connection's close.
		defer func() {
			if err := finish(); err != nil {
				fmt.Fprintf(stderr, "qmp-shell: --record: %v\n", err)
				code = 1
			}
		}()
	}
	if err == nil {
		err = client.ConnectDialer(connectCtx, dialer)
	}
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "qmp-shell: %s\n", describeConnectError(err, o.addr, o.token != ""))
		return 1
	}
	defer client.Disconnect(context.Background())

	sh := &shell{c: client, hmp: o.hmp, verbose: o.verbose, pretty: o.pretty, cmdTimeout: o.cmdTimeout,
		onEnter: o.events == "enter", out: stdout}
	sh.events = client.Listen(qmpclient.ListenOptions{Queue: maxQueuedEvents})
	defer sh.events.Close()

	switch {
	case len(o.commands) > 0:
		for _, line := range o.commands {
			if err := sh.execute(ctx, line); err != nil {
				break
			}
		}
		if sh.p.inTransaction {
			sh.fail("qmp-shell: transaction( not closed with )\n")
		}
	case interactive:
		if sh.onEnter {
			// Events wait for an empty line; the watcher only notices
			// the end of the session.
			sh.watch = client.Listen(qmpclient.ListenOptions{Filter: func(qmp.Event) bool { return false }})
			defer sh.watch.Close()
		}
		if err := sh.interactive(ctx, inFile, stdout, o.history); err != nil {
			fmt.Fprintf(stderr, "qmp-shell: %v\n", err)
			return 1
		}
		return 0
	default:
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if err := sh.execute(ctx, sc.Text()); err != nil {
				break
			}
		}
		if err := sc.Err(); err != nil {
			sh.fail("qmp-shell: reading input: %v\n", err)
		}
		if sh.p.inTransaction {
			sh.fail("qmp-shell: transaction( not closed with )\n")
		}
	}
	sh.drainEvents()
	if sh.failed {
		return 1
	}
	return 0
}

// maxQueuedEvents bounds the events held for printing; beyond it the
// oldest are dropped (and the shell says how many).
const maxQueuedEvents = 1024

// interactive runs the line editor on a terminal.
func (sh *shell) interactive(ctx context.Context, in *os.File, out io.Writer, historyFile string) error {
	fd := int(in.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer term.Restore(fd, state)
	kb, err := newKeyboard(fd)
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer kb.close()
	sh.kb = kb

	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{kb, out}, sh.p.prompt())
	width := 80
	if w, h, err := term.GetSize(fd); err == nil {
		_ = t.SetSize(w, h)
		width = w
	}
	hist := openHistory(historyFile)
	defer hist.close()
	t.History = hist
	sh.out = t
	sh.loadCompletion(ctx)
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		switch key {
		case '\t':
			nl, list, ok := sh.comp.complete(line, pos, sh.p.inTransaction)
			if list != nil {
				// A second Tab on an ambiguous word: show the candidates
				// under the line, then the prompt and line again.
				sh.printf("%s%s\n%s", sh.p.prompt(), line, columns(list, width))
			}
			return nl, len(nl), ok
		case keyAbort:
			// Ctrl-C at the prompt: leave the typed text on the screen
			// marked ^C, and start an empty line (readline's way).
			sh.comp.lastTab = ""
			sh.printf("%s%s^C\n", sh.p.prompt(), line)
			return "", 0, true
		}
		sh.comp.lastTab = ""
		return "", 0, false
	}

	if g := sh.c.Greeting(); g != nil {
		if sh.hmp {
			sh.printf("Welcome to the HMP shell!\nConnected to QEMU %s\n\n", g.Version.QEMU)
		} else {
			sh.printf("Welcome to the QMP low-level shell!\nConnected to QEMU %s\n\n", g.Version.QEMU)
		}
		if sh.onEnter {
			sh.printf("Events are held: enter an empty line to see them.\n\n")
		}
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sh.watchEvents(watchCtx)
	}()
	defer func() {
		stopWatch()
		<-done
	}()
	for {
		t.SetPrompt(sh.p.prompt())
		line, err := t.ReadLine()
		if err == io.EOF {
			t.SetPrompt("") // the terminal redraws its prompt after each write
			sh.printf("\n")
			return nil
		}
		if err != nil {
			return err
		}
		if err := sh.execute(ctx, line); err != nil {
			if errors.Is(err, errQuit) {
				return nil
			}
			return err
		}
	}
}

// parseAddress turns a command-line address into a dialer.
func parseAddress(addr, caFile, token string) (transport.Dialer, error) {
	switch {
	case strings.HasPrefix(addr, "ws://"), strings.HasPrefix(addr, "wss://"):
		return wsDialer(addr, caFile, token)
	case strings.HasPrefix(addr, "unix:"), strings.HasPrefix(addr, "tcp:"), strings.HasPrefix(addr, "/"):
		return endpoint.Parse(addr)
	case strings.Contains(addr, ":"):
		return tcp.Endpoint{Address: addr}, nil
	}
	return unix.Endpoint{Path: addr}, nil
}

// listenDialer is a dialer that opens a listening socket, waits for one
// connection (QEMU in client mode) and closes the socket again.
func listenDialer(addr string, stderr io.Writer) (transport.Dialer, error) {
	var lo transport.ListenOpener
	switch {
	case strings.HasPrefix(addr, "unix:"):
		lo = unix.Endpoint{Path: strings.TrimPrefix(addr, "unix:")}
	case strings.HasPrefix(addr, "tcp:"):
		lo = tcp.Endpoint{Address: strings.TrimPrefix(addr, "tcp:")}
	case strings.HasPrefix(addr, "/"):
		lo = unix.Endpoint{Path: addr}
	default:
		return nil, fmt.Errorf("--listen %q: want unix:/path or tcp:host:port", addr)
	}
	return transport.DialFunc(func(ctx context.Context) (net.Conn, error) {
		ln, err := lo.Listen(ctx)
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		fmt.Fprintf(stderr, "qmp-shell: waiting for QEMU to connect on %s\n", ln.Addr())
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		defer stop()
		conn, err := ln.Accept()
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return conn, err
	}), nil
}

func defaultHistoryFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".qmp-shell_history")
}
