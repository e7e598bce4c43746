package reactor

import (
	"errors"
	"fmt"
)

// inflater is a push-style, resumable DEFLATE (RFC 1951) decoder.
// Compressed bytes are appended as they arrive (push) and read decodes
// into the caller's buffer as far as the input and the buffer allow: it
// stops when the buffer is full or the next step needs bits not yet
// received, and carries on from exactly there on the next call.
//
// A step is the unit that is decoded whole or not at all: a block header
// (for a dynamic block, its whole code description), a literal, or a
// length with its distance. A step cut short by the end of the input is
// decoded again from its start once more input arrives; a step is at most
// a few hundred bytes (a code description), so the work stays linear.
// Output is produced as soon as its step decodes — a literal as soon as
// its code is complete, stored bytes as soon as they arrive — which is
// what zlib's inflate does and so what Mercurial's client delivers.
//
// Memory is the input of the last push plus a partial step before it,
// the 32 KiB window and the two code tables. Huffman codes are decoded
// canonically, bit by bit, in the manner of zlib's reference decoder
// puff.c.
type inflater struct {
	in  []byte // input; in[:bit/8] is consumed, dropped at the next push
	bit uint   // position of the next unconsumed bit in in
	max int    // limit on len(in)

	state     uint8
	final     bool // the block being decoded is the last one
	stored    int  // stored block: bytes left to copy
	copyLen   int  // back reference: bytes left to copy
	copyDist  int
	lc, dc    *huffman
	lencode   huffman
	distcode  huffman
	window    [windowSize]byte // ring of the last 32 KiB of output
	total     int64            // bytes output so far
	corruptAt error            // sticky error
}

// inflater states.
const (
	infHeader uint8 = iota // next: a block header
	infStored              // copying a stored block
	infCodes               // decoding a Huffman-coded block
	infDone                // the final block ended
)

const windowSize = 32 << 10

var (
	errInflateTruncated = errors.New("truncated step") // internal: wait for more input
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

// bits reads n ≤ 24 bits.
func (r *bitReader) bits(n uint) (uint32, error) {
	end := r.pos + n
	if (end+7)>>3 > uint(len(r.b)) {
		return 0, errInflateTruncated
	}
	i, sh := r.pos>>3, r.pos&7
	var w uint32
	for k := uint(0); k < 4 && int(i+k) < len(r.b); k++ {
		w |= uint32(r.b[i+k]) << (8 * k)
	}
	r.pos = end
	return w >> sh & (1<<n - 1), nil
}

func (r *bitReader) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	pos := r.pos
	for l := 1; l < 16; l++ {
		i := pos >> 3
		if int(i) >= len(r.b) {
			return 0, errInflateTruncated
		}
		code |= int(r.b[i] >> (pos & 7) & 1)
		pos++
		count := int(h.count[l])
		if code-count < first {
			r.pos = pos
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

// push appends p to the input. The unconsumed input may not exceed max
// bytes.
func (z *inflater) push(p []byte) error {
	if z.state == infDone {
		if len(p) > 0 {
			return fmt.Errorf("%w: data after the final block", errInflateCorrupt)
		}
		return nil
	}
	// Drop the consumed whole bytes; keep the bit offset.
	used := z.bit >> 3
	z.in = z.in[:copy(z.in, z.in[used:])]
	z.bit &= 7
	if len(z.in)+len(p) > z.max {
		return bufferLimit(len(z.in)+len(p), z.max)
	}
	z.in = append(z.in, p...)
	return nil
}

// done reports whether the final block has been decoded.
func (z *inflater) done() bool { return z.state == infDone }

// rest returns the whole bytes of input after the final block.
func (z *inflater) rest() []byte {
	n := (z.bit + 7) >> 3
	return z.in[min(int(n), len(z.in)):]
}

// read decodes into dst as far as the input allows and returns how many
// bytes it wrote. It returns fewer than len(dst) only when the input so
// far is used up (or the final block has ended).
func (z *inflater) read(dst []byte) (int, error) {
	if z.corruptAt != nil {
		return 0, z.corruptAt
	}
	r := bitReader{b: z.in, pos: z.bit}
	n, err := z.run(&r, dst)
	z.remember(dst[:n])
	if errors.Is(err, errInflateTruncated) {
		err = nil
	}
	if err != nil {
		z.corruptAt = err
	}
	z.bit = r.pos
	return n, err
}

// run is read's loop. r.pos is committed only at step boundaries.
func (z *inflater) run(r *bitReader, dst []byte) (n int, err error) {
	for {
		switch z.state {
		case infDone:
			return n, nil
		case infHeader:
			if z.final {
				z.state = infDone
				continue
			}
			save := r.pos
			if err := z.header(r); err != nil {
				r.pos = save
				return n, err
			}
		case infStored:
			if z.stored == 0 {
				z.state = infHeader
				continue
			}
			i := int(r.pos >> 3)
			k := min(z.stored, len(r.b)-i, len(dst)-n)
			if k == 0 {
				return n, nil
			}
			copy(dst[n:], r.b[i:i+k])
			n += k
			z.stored -= k
			r.pos += uint(k) << 3
		case infCodes:
			for z.copyLen > 0 {
				if n == len(dst) {
					return n, nil
				}
				z.copyByte(dst, n)
				n++
				z.copyLen--
			}
			if n == len(dst) {
				return n, nil
			}
			save := r.pos
			sym, err := r.decode(z.lc)
			if err == nil {
				switch {
				case sym < 256:
					dst[n] = byte(sym)
					n++
					continue
				case sym == 256:
					z.state = infHeader
					continue
				}
				err = z.reference(r, sym, int64(n))
			}
			if err != nil {
				r.pos = save
				return n, err
			}
		}
	}
}

// copyByte copies one byte of the current back reference to dst[n]: from
// dst itself when the reference reaches into this call's output, else
// from the window.
func (z *inflater) copyByte(dst []byte, n int) {
	if back := n - z.copyDist; back >= 0 {
		dst[n] = dst[back]
		return
	}
	dst[n] = z.window[(z.total+int64(n)-int64(z.copyDist))&(windowSize-1)]
}

// reference reads a length symbol's extra bits and the distance, and sets
// up the copy. n is the output of the current read so far.
func (z *inflater) reference(r *bitReader, sym int, n int64) error {
	if sym > 285 {
		return fmt.Errorf("%w: invalid length symbol", errInflateCorrupt)
	}
	sym -= 257
	e, err := r.bits(uint(lenExtra[sym]))
	if err != nil {
		return err
	}
	length := int(lenBase[sym]) + int(e)
	ds, err := r.decode(z.dc)
	if err != nil {
		return err
	}
	if ds > 29 {
		return fmt.Errorf("%w: invalid distance symbol", errInflateCorrupt)
	}
	if e, err = r.bits(uint(dstExtra[ds])); err != nil {
		return err
	}
	dist := int(dstBase[ds]) + int(e)
	if int64(dist) > z.total+n {
		return fmt.Errorf("%w: distance too far back", errInflateCorrupt)
	}
	z.copyLen, z.copyDist = length, dist
	return nil
}

// remember adds out, the output of one read, to the window.
func (z *inflater) remember(out []byte) {
	if len(out) > windowSize {
		z.total += int64(len(out) - windowSize)
		out = out[len(out)-windowSize:]
	}
	for len(out) > 0 {
		i := int(z.total & (windowSize - 1))
		k := copy(z.window[i:], out)
		out = out[k:]
		z.total += int64(k)
	}
}

// header decodes a block header (a dynamic block's code description
// included) and sets the state for the block's contents.
func (z *inflater) header(r *bitReader) error {
	hdr, err := r.bits(3)
	if err != nil {
		return err
	}
	switch hdr >> 1 {
	case 0:
		r.pos = (r.pos + 7) &^ 7
		i := int(r.pos >> 3)
		if i+4 > len(r.b) {
			return errInflateTruncated
		}
		n := int(r.b[i]) | int(r.b[i+1])<<8
		if nn := int(r.b[i+2]) | int(r.b[i+3])<<8; n != ^nn&0xffff {
			return fmt.Errorf("%w: stored block length check", errInflateCorrupt)
		}
		r.pos += 32
		z.stored = n
		z.state = infStored
	case 1:
		z.lc, z.dc = &fixedLen, &fixedDist
		z.state = infCodes
	case 2:
		if err := z.dynamic(r); err != nil {
			return err
		}
		z.lc, z.dc = &z.lencode, &z.distcode
		z.state = infCodes
	default:
		return fmt.Errorf("%w: invalid block type", errInflateCorrupt)
	}
	z.final = hdr&1 != 0
	return nil
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
