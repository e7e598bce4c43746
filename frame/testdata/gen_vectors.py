#!/usr/bin/python3
"""Generate interop vectors from the installed Mercurial (6.3).

Run with Debian's /usr/bin/python3, which imports Mercurial from the system:

    /usr/bin/python3 frame/testdata/gen_vectors.py > frame/testdata/hg-vectors.json

The output is deterministic; frame/vectors_test.go re-runs this script when
Mercurial is importable and fails on any difference to the committed file.

Sections:
  human        human-syntax strings -> frame bytes (makeframefromhumanstring),
               or the exception Mercurial raises
  headers      8-byte headers -> what Mercurial's parseheader reports
  cbor_encode  Python literals -> cborutil.streamencode bytes
  cbor_decode  indefinite-length items Mercurial's streaming encoders emit,
               with the definite encoding of the same value

Large payloads are written compactly: a "fill" of {"text": T, "count": N}
means the placeholder {fill} in "human" (or "literal") stands for T repeated
N times, and frames or encodings longer than 512 bytes are given as their
first 64 bytes ("prefix"), total length and SHA-256.
"""

import ast
import hashlib
import json
import sys
import warnings

warnings.simplefilter('ignore')

from mercurial import wireprotoframing as wpf
from mercurial.utils import cborutil

BIG = 512


def blob(b):
    """Describe bytes fully or, when large, by prefix, length and hash."""
    b = bytes(b)
    if len(b) <= BIG:
        return {'hex': b.hex()}
    return {
        'prefix': b[:64].hex(),
        'length': len(b),
        'sha256': hashlib.sha256(b).hexdigest(),
    }


def expand(s, fill):
    """Replace the {fill} placeholder with the fill it describes."""
    if fill is None:
        return s
    return s.replace('{fill}', fill['text'] * fill['count'])


def human_vector(human, fill=None):
    v = {'human': human}
    if fill is not None:
        v['fill'] = fill
    try:
        frame = wpf.makeframefromhumanstring(
            expand(human, fill).encode('latin1')
        )
        v.update(blob(frame))
    except Exception as e:  # record what Mercurial rejects, and how
        v['error'] = type(e).__name__
    return v


def human_vectors():
    out = []
    names = {v: k.decode() for k, v in wpf.FRAME_TYPES.items()}
    sflags = [k.decode() for k in wpf.STREAM_FLAGS]

    # Every frame type by name and by number, every flag by name and by
    # number, singly and all together.
    for tid in sorted(wpf.FRAME_TYPE_FLAGS):
        for tname in (names[tid], str(tid)):
            out.append(human_vector('1 1 0 %s 0 ' % tname))
            flags = sorted(wpf.FRAME_TYPE_FLAGS[tid].items(), key=lambda kv: kv[1])
            for fname, fval in flags:
                out.append(human_vector('1 1 0 %s %s x' % (tname, fname.decode())))
                out.append(human_vector('1 1 0 %s %d x' % (tname, fval)))
            if flags:
                out.append(human_vector('3 5 0 %s %s x' % (
                    tname, '|'.join(f.decode() for f, _ in flags))))
            # Flag bits with no name, which Mercurial does not check.
            out.append(human_vector('1 1 0 %s 15 x' % tname))
        # Flag names of another type are not flags of this one.
        out.append(human_vector('1 1 0 %s have-data x' % names[tid]))

    # Stream flags.
    for i, name in enumerate(sflags):
        out.append(human_vector('1 1 %s command-response eos x' % name))
    out.append(human_vector('1 1 %s command-response eos x' % '|'.join(sflags)))
    for n in ('0', '1', '2', '4', '7', '8', '255', 'stream-begin|8', '1|2|4'):
        out.append(human_vector('1 1 %s command-response eos x' % n))

    # Ids.
    for rid, sid in (('0', '0'), ('65535', '255'), ('258', '3'), ('1_000', '0'),
                     ('+7', '-0'), ('007', '01'), ('\t5', '6\x0b')):
        out.append(human_vector('%s %s stream-begin command-request new ' % (rid, sid)))

    # Payloads: escaped byte strings.
    for p in ('', 'a', 'hello world', '\\x00\\x01\\xff', '\\n\\t\\r\\\\',
              "\\'\\\"", '\\0\\7\\77\\101\\1234\\777', '\\q\\u0041\\8',
              'a\\\nb', 'cbor', 'cbor :1', '  two  spaces ', 'tab\there'):
        out.append(human_vector('1 2 stream-begin command-response eos %s' % p))

    # Payloads: cbor literals.
    for lit in (
        "{b'name': b'foo'}",
        "{b'name': b'command1', b'args': {b'foo': b'bar', b'key1': b'val1'}}",
        "{b'status': b'ok'}",
        "{b'b': 1, b'aa': 2}",
        "{b'x': 1, 5: 2, None: 3, False: 4, -1: 5}",
        "{True: 1, 1: 2}",
        "[1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 4294967295, 4294967296]",
        "[18446744073709551615, -18446744073709551616, -9223372036854775809]",
        "[0x10, 0o17, 0b101, 1_000, 0_0, +5, -(3)]",
        "(1, b'two', [3])",
        "1, 2",
        "()",
        "[]",
        "{}",
        "set()",
        "{b'a', b'b', 1, None}",
        "{1, True}",
        "b'a' b'b'",
        "b'\\x00\\n\\\\'",
        "rb'\\n'",
        "B'x'",
        "b'''tri\nple'''",
        "[\n  1,  # comment\n  2,\n]",
        "{b'nested': {b'deeper': [{b'deepest': [None, True, False]}]}}",
        "True",
        "None",
        "b''",
    ):
        out.append(human_vector('1 1 stream-begin command-request new cbor:%s' % lit))

    # Payload sizes around the frame limits.
    for n in (1, 32767, 32768, 32769, 65535):
        out.append(human_vector('1 1 0 command-data eos {fill}', {'text': 'a', 'count': n}))
    for n in (32765, 65531):
        out.append(human_vector("1 1 0 command-response continuation cbor:b'{fill}'",
                                {'text': 'z', 'count': n}))

    # What Mercurial rejects.
    for bad in (
        '', '1 1 0 command-request new', 'x 1 0 command-request new ',
        '1 x 0 command-request new ', '1 1 nope command-request new ',
        '1 1 0 nope new ', '1 1 0 4 0 ', '1 1 0 command-request nope ',
        '65536 1 0 command-request new ', '1 256 0 command-request new ',
        '1 1 256 command-request new ', '-1 1 0 command-request new ',
        '1  1 0 command-request new ', '1 1 0 command-request new \\x4',
        '1 1 0 command-request new \\', '1 1 0 command-request new cbor:',
        '1 1 0 command-request new cbor:1.5', '1 1 0 command-request new cbor:[1',
        '1 1 0 command-request new cbor:-(-1)', '1 1 0 command-request new cbor:--1',
        '1 1 0 command-request new cbor:{[1]: 2}', '1 1 0 command-request new cbor:01',
        '1 1 0 command-request new cbor:18446744073709551616',
        '1 1 0 command-request new cbor:-18446744073709551617',
        "1 1 0 command-request new cbor:b'a' 'b'", '1 1 0 command-request new cbor:foo',
        '1 1 0 command-request new cbor:...', "1 1 0 command-request new cbor:f'x'",
        '1 1 0 command-request -1 ', '1 1 -1 command-request new ',
        # Deviations (see frame/vectors_test.go): Mercurial cannot encode str.
        "1 1 0 command-request new cbor:'text'",
        "1 1 0 command-request new cbor:{'k': b'v'}",
        # Deviation: hgcbor cannot hold tuples as keys or set elements.
        "1 1 0 command-request new cbor:{(1, 2): b'x'}",
        "1 1 0 command-request new cbor:{(b'a',)}",
        # Deviation: flags that do not fit in 4 bits spill into the type.
        '1 1 0 command-request 16 ', '1 1 0 command-request 32 ',
    ):
        out.append(human_vector(bad))
    return out


def header_vectors():
    out = []
    lengths = (0, 1, 23, 255, 256, 32767, 32768, 32769, 65535, 65536,
               65537, 131072, 0x123456, 0xffffff)
    for i, length in enumerate(lengths):
        rid = (i * 0x0101 + 1) & 0xffff
        b = bytes([length & 0xff, (length >> 8) & 0xff, length >> 16,
                   rid & 0xff, rid >> 8, i, [0, 1, 2, 4, 7][i % 5],
                   (sorted(wpf.FRAME_TYPE_FLAGS)[i % 8] << 4) | (i % 4)])
        h = wpf.parseheader(b)
        out.append({
            'hex': b.hex(),
            'length': length,
            'mercurial': {
                'length': h.length,
                'requestid': h.requestid,
                'streamid': h.streamid,
                'streamflags': h.streamflags,
                'typeid': h.typeid,
                'flags': h.flags,
            },
        })
    return out


def cbor_encode_vectors():
    lits = [
        'None', 'True', 'False',
        '0', '1', '23', '24', '255', '256', '65535', '65536', '4294967295',
        '4294967296', '9223372036854775807', '9223372036854775808',
        '18446744073709551615', '-1', '-24', '-25', '-256', '-257', '-65536',
        '-65537', '-4294967296', '-4294967297', '-9223372036854775808',
        '-9223372036854775809', '-18446744073709551616',
        "b''", "b'a'", "b'\\x00\\xff'",
        '[]', '[1, [2, [3, [4]]]]', '(1, 2)', '[None, True, False]',
        '{}', "{b'a': 1}", "{b'b': 1, b'aa': 2, b'': 3, b'ab': 4}",
        "{b'\\xff': 1, b'\\x00': 2, b'\\x7f': 3}",
        '{10: 1, -1: 2, 2: 3, 300: 4, -300: 5, 18446744073709551615: 6, -18446744073709551616: 7}',
        "{b'x': 1, 5: 2, None: 3, False: 4, True: 6, -1: 5}",
        "{b'k': {b'n': [1, {b'm': set()}]}}",
        'set()', "{b'b', b'aa', 3, -2, None, True}", '{1, 2, 3, 10, -10}',
        "{b'status': b'ok'}",
        "{b'status': b'error', b'error': {b'message': b'unknown command'}}",
        "[{b'msg': b'%s', b'args': [b'foo']}]",
    ]
    out = []
    for lit in lits:
        out.append({'literal': lit,
                    **blob(b''.join(cborutil.streamencode(ast.literal_eval(lit))))})
    for n in (23, 24, 255, 256, 65535, 65536):
        fill = {'text': 'q', 'count': n}
        lit = "b'{fill}'"
        out.append({'literal': lit, 'fill': fill,
                    **blob(b''.join(cborutil.streamencode(
                        ast.literal_eval(expand(lit, fill)))))})
    for n in (23, 24, 255, 256, 65536):
        fill = {'text': '0,', 'count': n}  # a list of n zeros
        lit = "[{fill}]"
        out.append({'literal': lit, 'fill': fill,
                    **blob(b''.join(cborutil.streamencode(
                        ast.literal_eval(expand(lit, fill)))))})
    return out


def cbor_decode_vectors():
    cases = [
        (cborutil.streamencodebytestringfromiter([b'ab', b'', b'c']), b'abc'),
        (cborutil.streamencodebytestringfromiter([]), b''),
        (cborutil.streamencodeindefinitebytestring(b'x' * 10, chunksize=3), b'x' * 10),
        (cborutil.streamencodeindefinitebytestring(b'y' * 300, chunksize=128), b'y' * 300),
        (cborutil.streamencodearrayfromiter([]), []),
        (cborutil.streamencodearrayfromiter([1, b'a', [2], {b'k': None}]),
         [1, b'a', [2], {b'k': None}]),
        (cborutil.streamencodemapfromiter([]), {}),
        (cborutil.streamencodemapfromiter([(b'b', 1), (b'a', [1, 2])]),
         {b'b': 1, b'a': [1, 2]}),
        (cborutil.streamencodearrayfromiter(
            [b''.join(cborutil.streamencodearrayfromiter([1]))]), [b'\x9f\x01\xff']),
    ]
    out = []
    for gen, value in cases:
        out.append({
            'indefinite': blob(b''.join(gen)),
            'definite': blob(b''.join(cborutil.streamencode(value))),
        })
    # A nested indefinite array, hand-assembled from the streaming pieces.
    nested = (cborutil.BEGIN_INDEFINITE_ARRAY + b''.join(
        cborutil.streamencodearrayfromiter([1])) + cborutil.BREAK)
    out.append({'indefinite': blob(nested),
                'definite': blob(b''.join(cborutil.streamencode([[1]])))})
    return out


def main():
    doc = {
        'mercurial': __import__('mercurial.util').util.version().decode(),
        'human': human_vectors(),
        'headers': header_vectors(),
        'cbor_encode': cbor_encode_vectors(),
        'cbor_decode': cbor_decode_vectors(),
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
