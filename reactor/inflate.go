package reactor

import (
	"errors"
	"fmt"
)

// inflater is a push-style DEFLATE (RFC 1951) decoder: compressed bytes are
// appended as they arrive and every complete block is decoded at once. A
// block cut short by the end of the input so far is decoded again, from its
// start, when more input arrives; only the bytes of that one block are
// kept, so the cost is linear in the stream for blocks smaller than a
// frame, and the memory is one block plus the 32 KiB window.
//
// Huffman codes are decoded canonically, bit by bit, in the manner of
// zlib's reference decoder puff.c: slower than table-driven inflaters but
// simple to make resumable.
type inflater struct {
	in     []byte // input from the start of the current block
	bit    uint   // bit offset in in[0] where the current block starts
	window []byte // the last 32 KiB of output, for back references
	done   bool   // the final block was decoded
	max    int    // limit on len(in)
	// retryAt is the input length at which a block found truncated is
	// tried again: it grows geometrically, so a peer trickling a block in
	// tiny pieces costs linear, not quadratic, work.
	retryAt int

	// scratch, reused
	lencode, distcode huffman
}

const windowSize = 32 << 10

var (
	errInflateTruncated = errors.New("truncated block") // internal: wait for more input
	errInflateCorrupt   = errors.New("corrupt deflate data")
)

type huffman struct {
	count  [16]uint16
	symbol [288]uint16
}

// construct builds a canonical code from code lengths and returns how many
// codes are left unused (0 for a complete code); an over-subscribed code is
// an error.
func (h *huffman) construct(lengths []uint8) (int, error) {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	if int(h.count[0]) == len(lengths) {
		return 0, nil // no codes: decoding will fail if one is used
	}
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return 0, fmt.Errorf("%w: over-subscribed code", errInflateCorrupt)
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(sym)
			offs[l]++
		}
	}
	return left, nil
}

// checkIncomplete allows an incomplete code only in the one case zlib
// does: a single code of length 1.
func checkIncomplete(h *huffman, left, n int) error {
	if left > 0 && n != int(h.count[0])+int(h.count[1]) {
		return fmt.Errorf("%w: incomplete code", errInflateCorrupt)
	}
	return nil
}

// bitReader reads bits LSB first from b starting at bit offset pos.
type bitReader struct {
	b   []byte
	pos uint // absolute bit position
}

func (r *bitReader) bits(n uint) (uint32, error) {
	var v uint32
	for i := uint(0); i < n; i++ {
		byteIdx := r.pos >> 3
		if int(byteIdx) >= len(r.b) {
			return 0, errInflateTruncated
		}
		v |= uint32(r.b[byteIdx]>>(r.pos&7)&1) << i
		r.pos++
	}
	return v, nil
}

func (r *bitReader) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		count := int(h.count[l])
		if code-count < first {
			return int(h.symbol[index+(code-first)]), nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, fmt.Errorf("%w: invalid code", errInflateCorrupt)
}

var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	fixedLen, fixedDist huffman
)

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	_, _ = fixedLen.construct(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	_, _ = fixedDist.construct(d[:])
}

// push appends p and returns the output of every block it completes
// (appended to dst). Unless force is set, a block that was found truncated
// is only retried once the input has grown enough; force retries now (the
// peer says the data so far is complete).
func (z *inflater) push(dst, p []byte, force bool) ([]byte, error) {
	if z.done {
		if len(p) > 0 {
			return dst, fmt.Errorf("%w: data after the final block", errInflateCorrupt)
		}
		return dst, nil
	}
	if len(z.in)+len(p) > z.max {
		return dst, errBufferLimit
	}
	z.in = append(z.in, p...)
	if !force && len(z.in) < z.retryAt {
		return dst, nil
	}
	for !z.done {
		start := len(dst)
		r := bitReader{b: z.in, pos: z.bit}
		var err error
		dst, err = z.block(&r, dst)
		if errors.Is(err, errInflateTruncated) {
			z.retryAt = len(z.in) + max(len(z.in)/2, 4096)
			return dst[:start], nil
		}
		if err != nil {
			return dst[:start], err
		}
		z.remember(dst[start:])
		// Drop the consumed whole bytes; keep the bit offset.
		n := r.pos >> 3
		z.in = z.in[:copy(z.in, z.in[n:])]
		z.bit = r.pos & 7
		z.retryAt = 0
	}
	return dst, nil
}

func (z *inflater) remember(out []byte) {
	if len(out) >= windowSize {
		z.window = append(z.window[:0], out[len(out)-windowSize:]...)
		return
	}
	if over := len(z.window) + len(out) - windowSize; over > 0 {
		z.window = z.window[:copy(z.window, z.window[over:])]
	}
	z.window = append(z.window, out...)
}

// block decodes one block, appending its output to dst. The window is the
// history before dst[start:]; back references may reach into both.
func (z *inflater) block(r *bitReader, dst []byte) ([]byte, error) {
	start := len(dst)
	hdr, err := r.bits(3)
	if err != nil {
		return dst, err
	}
	final := hdr&1 != 0
	switch hdr >> 1 {
	case 0:
		r.pos = (r.pos + 7) &^ 7
		i := int(r.pos >> 3)
		if i+4 > len(r.b) {
			return dst, errInflateTruncated
		}
		n := int(r.b[i]) | int(r.b[i+1])<<8
		if nn := int(r.b[i+2]) | int(r.b[i+3])<<8; n != ^nn&0xffff {
			return dst, fmt.Errorf("%w: stored block length check", errInflateCorrupt)
		}
		if i+4+n > len(r.b) {
			return dst, errInflateTruncated
		}
		dst = append(dst, r.b[i+4:i+4+n]...)
		r.pos = uint(i+4+n) << 3
	case 1:
		if dst, err = z.codes(r, dst, start, &fixedLen, &fixedDist); err != nil {
			return dst, err
		}
	case 2:
		if err := z.dynamic(r); err != nil {
			return dst, err
		}
		if dst, err = z.codes(r, dst, start, &z.lencode, &z.distcode); err != nil {
			return dst, err
		}
	default:
		return dst, fmt.Errorf("%w: invalid block type", errInflateCorrupt)
	}
	z.done = final
	return dst, nil
}

var clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func (z *inflater) dynamic(r *bitReader) error {
	v, err := r.bits(14)
	if err != nil {
		return err
	}
	nlen, ndist, ncode := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlen > 286 || ndist > 30 {
		return fmt.Errorf("%w: bad counts", errInflateCorrupt)
	}
	var lengths [320]uint8
	for i := 0; i < ncode; i++ {
		b, err := r.bits(3)
		if err != nil {
			return err
		}
		lengths[clOrder[i]] = uint8(b)
	}
	var lencode huffman
	if left, err := lencode.construct(lengths[:19]); err != nil {
		return err
	} else if left != 0 {
		return fmt.Errorf("%w: incomplete code-length code", errInflateCorrupt)
	}
	lengths = [320]uint8{}
	for i := 0; i < nlen+ndist; {
		sym, err := r.decode(&lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var l uint8
		var rep uint32
		switch sym {
		case 16:
			if i == 0 {
				return fmt.Errorf("%w: repeat with no first length", errInflateCorrupt)
			}
			l = lengths[i-1]
			if rep, err = r.bits(2); err != nil {
				return err
			}
			rep += 3
		case 17:
			if rep, err = r.bits(3); err != nil {
				return err
			}
			rep += 3
		default:
			if rep, err = r.bits(7); err != nil {
				return err
			}
			rep += 11
		}
		if i+int(rep) > nlen+ndist {
			return fmt.Errorf("%w: too many lengths", errInflateCorrupt)
		}
		for ; rep > 0; rep-- {
			lengths[i] = l
			i++
		}
	}
	if lengths[256] == 0 {
		return fmt.Errorf("%w: no end-of-block code", errInflateCorrupt)
	}
	left, err := z.lencode.construct(lengths[:nlen])
	if err != nil {
		return err
	}
	if err := checkIncomplete(&z.lencode, left, nlen); err != nil {
		return err
	}
	if left, err = z.distcode.construct(lengths[nlen : nlen+ndist]); err != nil {
		return err
	}
	return checkIncomplete(&z.distcode, left, ndist)
}

func (z *inflater) codes(r *bitReader, dst []byte, start int, lc, dc *huffman) ([]byte, error) {
	for {
		sym, err := r.decode(lc)
		if err != nil {
			return dst, err
		}
		switch {
		case sym < 256:
			dst = append(dst, byte(sym))
			continue
		case sym == 256:
			return dst, nil
		case sym > 285:
			return dst, fmt.Errorf("%w: invalid length symbol", errInflateCorrupt)
		}
		sym -= 257
		e, err := r.bits(uint(lenExtra[sym]))
		if err != nil {
			return dst, err
		}
		length := int(lenBase[sym]) + int(e)
		ds, err := r.decode(dc)
		if err != nil {
			return dst, err
		}
		if ds > 29 {
			return dst, fmt.Errorf("%w: invalid distance symbol", errInflateCorrupt)
		}
		e, err = r.bits(uint(dstExtra[ds]))
		if err != nil {
			return dst, err
		}
		dist := int(dstBase[ds]) + int(e)
		have := len(dst) - start
		if dist > have+len(z.window) {
			return dst, fmt.Errorf("%w: distance too far back", errInflateCorrupt)
		}
		for ; length > 0; length-- {
			var c byte
			if back := len(dst) - dist; back >= start {
				c = dst[back]
			} else {
				c = z.window[len(z.window)-(start-back)]
			}
			dst = append(dst, c)
		}
	}
}
