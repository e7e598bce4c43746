package main

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// keyAbort is the key the line editor is given for Ctrl-C at the prompt.
// golang.org/x/term ends ReadLine on Ctrl-C as on Ctrl-D, so the keyboard
// hands it Ctrl-G instead (readline's abort), which the shell's key
// callback turns into "clear the line".
const keyAbort = 0x07

// maxTypeAhead bounds the keys kept while a command runs and the line
// editor is not reading; keys beyond it are dropped.
const maxTypeAhead = 64 << 10

// keyboard reads the terminal all the time, so that Ctrl-C is seen while a
// command runs (the terminal is in raw mode: no SIGINT). While a command
// runs, Ctrl-C calls its interrupt function; at the prompt it becomes
// keyAbort. Other keys are kept for the line editor, which reads them
// through Read.
type keyboard struct {
	fd   int      // the terminal, restored to blocking mode at close
	f    *os.File // a non-blocking duplicate of fd, so close ends a read
	done chan struct{}

	mu        sync.Mutex
	pending   []byte
	err       error         // the read error, once reading ended
	ready     chan struct{} // signalled when pending or err changes
	interrupt func()        // set while a command runs
}

// newKeyboard starts reading the terminal fd.
func newKeyboard(fd int) (*keyboard, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, err
	}
	k := &keyboard{fd: fd, f: os.NewFile(uintptr(dup), "terminal"), done: make(chan struct{}), ready: make(chan struct{}, 1)}
	go k.run()
	return k, nil
}

func (k *keyboard) run() {
	defer close(k.done)
	buf := make([]byte, 4096)
	for {
		n, err := k.f.Read(buf)
		k.mu.Lock()
		for _, b := range buf[:n] {
			if b == 3 { // Ctrl-C
				if k.interrupt != nil {
					k.interrupt()
					continue
				}
				b = keyAbort
			}
			if len(k.pending) < maxTypeAhead {
				k.pending = append(k.pending, b)
			}
		}
		if err != nil {
			k.err = err
		}
		k.mu.Unlock()
		select {
		case k.ready <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// Read implements io.Reader for the line editor: the keys typed so far,
// waiting for one when there are none.
func (k *keyboard) Read(p []byte) (int, error) {
	for {
		k.mu.Lock()
		if len(k.pending) > 0 {
			n := copy(p, k.pending)
			k.pending = k.pending[:copy(k.pending, k.pending[n:])]
			k.mu.Unlock()
			return n, nil
		}
		err := k.err
		k.mu.Unlock()
		if err != nil {
			return 0, err
		}
		<-k.ready
	}
}

// whileRunning makes Ctrl-C call interrupt until the returned function is
// called.
func (k *keyboard) whileRunning(interrupt func()) (stop func()) {
	k.mu.Lock()
	k.interrupt = interrupt
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		k.interrupt = nil
		k.mu.Unlock()
	}
}

// close stops reading, waits for the reader and puts the terminal back in
// blocking mode (the duplicate shares its flags).
func (k *keyboard) close() {
	k.f.Close()
	<-k.done
	_ = unix.SetNonblock(k.fd, false)
}
