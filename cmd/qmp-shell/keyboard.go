package main

import (
	"io"
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
//
// The terminal stays in blocking mode (it is usually one open file with
// standard output, whose writes must not fail with EAGAIN): the reader
// polls it together with a pipe that close writes to.
type keyboard struct {
	fd   int    // the terminal
	wake [2]int // a pipe: close writes to wake[1] to end the reader
	done chan struct{}

	mu        sync.Mutex
	pending   []byte
	err       error         // the read error, once reading ended
	ready     chan struct{} // signalled when pending or err changes
	interrupt func()        // set while a command runs
}

// newKeyboard starts reading the terminal fd.
func newKeyboard(fd int) (*keyboard, error) {
	k := &keyboard{fd: fd, done: make(chan struct{}), ready: make(chan struct{}, 1)}
	if err := unix.Pipe2(k.wake[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	go k.run()
	return k, nil
}

func (k *keyboard) run() {
	defer close(k.done)
	buf := make([]byte, 4096)
	for {
		n, err := k.read(buf)
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

// read waits until the terminal has input or close was called, and reads.
func (k *keyboard) read(buf []byte) (int, error) {
	for {
		fds := []unix.PollFd{{Fd: int32(k.fd), Events: unix.POLLIN}, {Fd: int32(k.wake[0]), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return 0, err
		}
		if fds[1].Revents != 0 {
			return 0, io.EOF // closed
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(k.fd, buf)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
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

// close stops reading and waits for the reader.
func (k *keyboard) close() {
	_, _ = unix.Write(k.wake[1], []byte{0})
	<-k.done
	unix.Close(k.wake[0])
	unix.Close(k.wake[1])
}
