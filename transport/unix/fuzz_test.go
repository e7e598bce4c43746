//go:build unix

package unix

import (
	"encoding/binary"
	"os"
	"slices"
	"syscall"
	"testing"
	"unsafe"
)

// FuzzParseRights feeds the SCM_RIGHTS receive path's parser arbitrary
// control buffers (it must never panic, read past the buffer or find more
// descriptors than the buffer holds) and well-formed ones built from the
// input (it must find exactly the descriptors encoded). It parses only:
// no descriptor is opened or closed.
func FuzzParseRights(f *testing.F) {
	f.Add(syscall.UnixRights(3, 4, 5))
	f.Add(append(syscall.UnixRights(7), syscall.UnixRights(8, 9)...))
	f.Add([]byte{})
	f.Add(make([]byte, syscall.SizeofCmsghdr))
	short := syscall.UnixRights(1, 2)
	f.Add(short[:len(short)-3])
	f.Fuzz(func(t *testing.T, oob []byte) {
		fds, err := parseRights(oob)
		if len(fds) > len(oob)/4 {
			t.Fatalf("%d descriptors from %d bytes", len(fds), len(oob))
		}
		if err != nil && err != errControl {
			t.Fatalf("unexpected error %v", err)
		}

		// The input read as descriptors, encoded the kernel's way, in
		// two messages.
		var want []int
		for b := oob; len(b) >= 4; b = b[4:] {
			want = append(want, int(int32(binary.NativeEndian.Uint32(b))))
		}
		half := len(want) / 2
		var enc []byte
		if half > 0 {
			enc = append(enc, syscall.UnixRights(want[:half]...)...)
		}
		if len(want) > half {
			enc = append(enc, syscall.UnixRights(want[half:]...)...)
		}
		got, err := parseRights(enc)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("parseRights(UnixRights(%v)) = %v, %v", want, got, err)
		}
	})
}

func TestKeepRightsSurvivesAnOddDataLength(t *testing.T) {
	// A data length that is not a multiple of 4: syscall.ParseUnixRights
	// (which keepRights used) indexes out of range and panics; the whole
	// descriptors before the odd bytes are kept.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd, err := syscall.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	b := syscall.UnixRights(fd, fd)
	(*syscall.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(syscall.CmsgLen(5))
	c := &Conn{maxFDs: 4}
	c.keepRights(b)
	files := c.TakeFDs()
	if len(files) != 1 {
		t.Fatalf("kept %d descriptors, want 1", len(files))
	}
	if _, err := files[0].Write([]byte("x")); err != nil {
		t.Fatalf("the kept descriptor is not the pipe: %v", err)
	}
	files[0].Close()
}
