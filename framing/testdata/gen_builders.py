#!/usr/bin/python3
"""Generate hg-builders.json: the bytes Mercurial's frame builders produce.

Runs the outbound builders of the installed Mercurial's wireprotoframing
(createcommandframes, createcommandresponseokframe,
createcommandresponseeosframes, createalternatelocationresponseframe,
createcommanderrorresponse, createerrorframe, createtextoutputframe,
bufferingcommandresponseemitter, outputstream.makestreamsettingsframe, and
clientreactor's sender-protocol-settings frame) on many inputs and records
what each call appended, or the exception it raised.

Each vector is a sequence of operations on one output stream; package
framing's tests replay them with OutputStream and compare.

Usage: gen_builders.py [OUTPUT]   (default: hg-builders.json next to this file)
"""

import hashlib
import io
import json
import os
import random
import sys

from mercurial import wireprotoframing as wf
from mercurial import wireprototypes
from mercurial import __version__ as hgversion
from mercurial.utils import cborutil

MAX = wf.DEFAULT_MAX_FRAME_SIZE
INLINE_LIMIT = 2048  # outputs longer than this are stored as a digest
MAX_HEADERS = 64  # and their frame headers listed, when there are this few


def pattern(n):
    """Deterministic filler bytes; the Go tests build the same."""
    return bytes((i * 7 + 3) % 251 for i in range(n))


def asciipattern(n):
    """Deterministic ASCII filler; the Go tests build the same."""
    return bytes(0x61 + i % 26 for i in range(n))


# --- values, as tagged JSON the Go tests rebuild -----------------------------


def tag(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, APat):
        return {"ascii": v.n}
    if isinstance(v, Pat):
        return {"pattern": v.n}
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, (list, tuple)):
        return {"list": [tag(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[tag(k), tag(x)] for k, x in v.items()]}
    raise TypeError(v)


class Pat(bytes):
    """Pattern bytes, written to the JSON as their length only."""

    def __new__(cls, n):
        o = super().__new__(cls, pattern(n))
        o.n = n
        return o


class APat(bytes):
    """ASCII pattern bytes, written to the JSON as their length only."""

    def __new__(cls, n):
        o = super().__new__(cls, asciipattern(n))
        o.n = n
        return o


# --- test encoders, mirrored in Go by the tests -------------------------------


class xorencoder:
    """Transforms every byte; never holds anything back."""

    def __init__(self, ui):
        pass

    def encode(self, data):
        return bytes(b ^ 0x5A for b in data)

    def flush(self):
        return b''

    def finish(self):
        return b''


class holdencoder:
    """Holds everything back until flush, which brackets it."""

    def __init__(self, ui):
        self.buf = b''

    def encode(self, data):
        self.buf += data
        return b''

    def flush(self):
        out = b'[' + self.buf + b']'
        self.buf = b''
        return out

    def finish(self):
        return b'!'


wf.populatestreamencoders()
wf.STREAM_ENCODERS[b'test-xor'] = (xorencoder, None)
wf.STREAM_ENCODERS[b'test-hold'] = (holdencoder, None)


# --- running operations --------------------------------------------------------


def framesummary(out):
    """The headers of the frames in out, read with correct lengths."""
    headers, i = [], 0
    while i < len(out):
        h = out[i : i + 8]
        headers.append(bytes(h).hex())
        i += 8 + (h[0] | h[1] << 8 | h[2] << 16)
    return headers


def record(op, out):
    out = bytes(out)
    if len(out) <= INLINE_LIMIT:
        op["out"] = out.hex()
    else:
        op["out_len"] = len(out)
        op["out_sha256"] = hashlib.sha256(out).hexdigest()
        headers = framesummary(out)
        op["out_frames"] = len(headers)
        if len(headers) <= MAX_HEADERS:
            op["out_headers"] = headers


def run(stream, emitters, mfs, op):
    """Run one operation on stream; return the bytes it produced."""
    kind = op["op"]
    rid = op.get("requestid", 1)
    a = op["_args"]
    if kind == "command":
        data = a.get("data")
        datafh = io.BytesIO(pattern(data)) if data is not None else None
        return b''.join(
            wf.createcommandframes(
                stream,
                rid,
                a["name"],
                a.get("args"),
                datafh=datafh,
                maxframesize=mfs,
                redirect=a.get("redirect"),
            )
        )
    if kind == "ok":
        f = wf.createcommandresponseokframe(stream, rid)
        return f or b''
    if kind == "eos":
        return b''.join(wf.createcommandresponseeosframes(stream, rid, maxframesize=mfs))
    if kind == "settings":
        return stream.makestreamsettingsframe(rid) or b''
    if kind == "setencoder":
        stream.setencoder(None, a["name"])
        return b''
    if kind == "altloc":
        loc = wireprototypes.alternatelocationresponse(**a)
        return wf.createalternatelocationresponseframe(stream, rid, loc)
    if kind == "cmderror":
        return b''.join(wf.createcommanderrorresponse(stream, rid, a["message"], a.get("args")))
    if kind == "error":
        return b''.join(wf.createerrorframe(stream, rid, a["msg"], errtype=a["errtype"]))
    if kind == "text":
        return b''.join(wf.createtextoutputframe(stream, rid, a["atoms"], maxframesize=mfs))
    if kind == "emit":
        e = emitters.get(rid)
        if e is None:
            e = emitters[rid] = wf.bufferingcommandresponseemitter(stream, rid, maxframesize=mfs)
        return b''.join(e.send(a["data"]))
    if kind == "protocolsettings":
        # What clientreactor sends before its first command.
        r = wf.clientreactor(None, buffersends=True, clientcontentencoders=a["encodings"])
        r._outgoingstream = stream
        r.callcommand(a["name"], {})
        action, meta = r.flushcommands()
        return b''.join(meta[b'framegen'])
    raise ValueError(kind)


def jsonargs(kind, a):
    """The operation's arguments as the Go tests read them."""
    out = {}
    for k, v in a.items():
        if kind == "text" and k == "atoms":
            out[k] = [
                {"format": tag(f), "args": [tag(x) for x in args], "labels": [tag(x) for x in labels]}
                for f, args, labels in v
            ]
        elif kind == "emit" and k == "data":
            out[k] = None if v is None else tag(v)
        elif kind == "protocolsettings" and k == "encodings":
            out[k] = [x.decode() for x in v]
        elif k in ("name", "message", "msg", "errtype", "url", "mediatype") and isinstance(v, bytes):
            out[k] = tag(v)
        else:
            out[k] = tag(v) if k != "data" or kind != "command" else v
    return out


vectors = []


def vector(name, ops, streamid=1, mfs=MAX):
    stream = wf.outputstream(streamid)
    emitters = {}
    recorded = []
    for op in ops:
        kind = op[0]
        rid = op[1]
        a = op[2] if len(op) > 2 else {}
        rec = {"op": kind, "requestid": rid, "args": jsonargs(kind, a), "_args": a}
        try:
            out = run(stream, emitters, mfs, rec)
        except Exception as e:  # the builder refused: record why
            msg = str(e) if isinstance(e, UnicodeError) else (e.args[0] if e.args else '')
            if isinstance(msg, bytes):
                msg = msg.decode()
            rec["error"] = {"type": type(e).__name__, "message": msg}
            del rec["_args"]
            recorded.append(rec)
            break
        del rec["_args"]
        record(rec, out)
        recorded.append(rec)
    vectors.append({"name": name, "stream": streamid, "maxframesize": mfs, "ops": recorded})


def request_payload_len(name, args):
    d = {b'name': name}
    if args:
        d[b'args'] = args
    return len(b''.join(cborutil.streamencode(d)))


def args_for_payload(name, target):
    """Arguments making the command request payload exactly target bytes."""
    n = max(0, target - 20)
    for _ in range(10):
        got = request_payload_len(name, {b'x': Pat(n)})
        if got == target:
            return {b'x': Pat(n)}
        n += target - got
    raise ValueError(target)


# --- command requests ------------------------------------------------------------

vector("command no args", [("command", 1, {"name": b'heads'})])
vector("command empty args", [("command", 1, {"name": b'heads', "args": {}})])
vector("command args", [("command", 1, {"name": b'known', "args": {b'nodes': [b'\x00' * 20, b'\xff' * 20], b'a': b'', b'zz': 7, b'b': -1}})])
vector("command redirect", [("command", 1, {"name": b'x', "args": {b'k': b'v'}, "redirect": {b'targets': [b'target-a'], b'hashes': [b'sha256', b'sha1']}})])
vector("command empty redirect", [("command", 1, {"name": b'x', "redirect": {}})])
vector("command empty name", [("command", 0, {"name": b''})])
vector("two commands on one stream", [("command", 1, {"name": b'a'}), ("command", 3, {"name": b'b'})], streamid=7)
vector("command request id 65535", [("command", 65535, {"name": b'a'})], streamid=255)

for mfs in (1, 10, 1000, 32767, MAX, 65535):
    for target in (32767, 32768, 32769, 65535):
        vector(
            "command payload %d max %d" % (target, mfs),
            [("command", 1, {"name": b'big', "args": args_for_payload(b'big', target)})],
            mfs=mfs,
        )
for mfs in (1, 5, 7, 8, 9, 16):
    vector("small command max %d" % mfs, [("command", 1, {"name": b'heads', "args": {b'a': b'b'}})], mfs=mfs)

# Command data. Mercurial reads data in DEFAULT_MAX_FRAME_SIZE chunks whatever
# maxframesize is, so data vectors use maxframesize >= that.
for mfs in (MAX, 65535):
    for size in (0, 1, 32767, 32768, 32769, 65535, 65536, 100000):
        vector("command data %d max %d" % (size, mfs), [("command", 1, {"name": b'push', "data": size})], mfs=mfs)
vector("command big args and data", [("command", 5, {"name": b'push', "args": args_for_payload(b'push', 40000), "data": 40000})])

# --- responses ---------------------------------------------------------------------

vector("ok without settings", [("ok", 1)], streamid=2)
vector("ok after settings identity", [("setencoder", 1, {"name": b'identity'}), ("settings", 1), ("ok", 1)], streamid=2)
vector("ok after settings xor", [("setencoder", 1, {"name": b'test-xor'}), ("settings", 1), ("ok", 1)], streamid=2)
vector("ok held back", [("setencoder", 1, {"name": b'test-hold'}), ("settings", 1), ("ok", 1), ("eos", 1)], streamid=2)
vector("settings without encoder", [("settings", 1), ("ok", 1)], streamid=2)
vector("settings twice", [("setencoder", 1, {"name": b'identity'}), ("settings", 1), ("settings", 3)], streamid=2)
vector("eos without encoder", [("eos", 1)], streamid=2)
vector("eos identity", [("setencoder", 1, {"name": b'identity'}), ("settings", 1), ("ok", 1), ("eos", 1)], streamid=2)
vector("eos held without settings", [("setencoder", 1, {"name": b'test-hold'}), ("eos", 1)], streamid=2)
for mfs in (1, 1000, 32767, MAX, 65535):
    for size in (0, 1, 32767, 32768, 32769, 65535):
        # holdencoder's flush brackets what it held: size-2 bytes of data.
        ops = [("setencoder", 1, {"name": b'test-hold'}), ("settings", 1), ("ok", 1)]
        if size >= 2:
            ops.append(("emit", 1, {"data": Pat(size - 2)}))
        ops.append(("eos", 1))
        vector("eos payload %d max %d" % (max(size, 2), mfs), ops, streamid=2, mfs=mfs)

# The emitter, with the chunk sizes around the frame size.
for mfs in (10, 1000, 32767, MAX, 65535):
    for name, sizes in (
        ("small chunks", [10, 20, 30, 0, 5]),
        ("exact frame", [mfs]),
        ("frame minus one then one", [mfs - 1, 1]),
        ("one then frame minus one", [1, mfs - 1]),
        ("frame plus one", [mfs + 1]),
        ("payload sizes", [0, 1, 32767, 32768, 32769, 65535]),
        ("many small", [7] * 50 + [mfs * 2 + 3] + [9] * 30),
    ):
        for enc in (b'identity', b'test-xor', b'test-hold'):
            ops = [("setencoder", 4, {"name": enc}), ("settings", 4), ("ok", 4)]
            ops += [("emit", 4, {"data": Pat(n)}) for n in sizes]
            ops += [("emit", 4, {"data": None}), ("eos", 4)]
            vector("emitter %s %s max %d" % (name, enc.decode(), mfs), ops, streamid=2, mfs=mfs)
vector("emitter without settings", [("emit", 1, {"data": Pat(10)}), ("emit", 1, {"data": None})], streamid=2)
vector("typical response", [
    ("setencoder", 1, {"name": b'identity'}), ("settings", 1), ("ok", 1),
    ("emit", 1, {"data": b''.join(cborutil.streamencode({b'heads': [b'\x01' * 20, b'\x02' * 20]}))}),
    ("emit", 1, {"data": b''.join(cborutil.streamencode([b'value', 42, None, True]))}),
    ("emit", 1, {"data": None}), ("eos", 1),
    ("setencoder", 3, {"name": b'identity'}), ("ok", 3), ("emit", 3, {"data": Pat(50000)}), ("emit", 3, {"data": None}), ("eos", 3),
], streamid=2)

vector("alternate location minimal", [("altloc", 1, {"url": b'https://example.com/x', "mediatype": b'application/mercurial-cbor'})], streamid=2)
vector("alternate location full", [("altloc", 1, {
    "url": b'https://example.com/x', "mediatype": b'application/mercurial-cbor', "size": 123456789,
    "fullhashes": [[b'sha256', b'\xaa' * 32]], "fullhashseed": b'seed',
    "serverdercerts": [b'cert1', b'cert2'], "servercadercerts": [b'ca'],
})], streamid=2)
vector("alternate location size zero", [("altloc", 1, {"url": b'u', "mediatype": b'm', "size": 0, "fullhashes": []})], streamid=2)
vector("alternate location encoded", [("setencoder", 1, {"name": b'test-xor'}), ("settings", 1),
    ("altloc", 1, {"url": b'u', "mediatype": b'm'})], streamid=2)

vector("command error", [("cmderror", 1, {"message": b'unknown command: %s', "args": [b'foo']})], streamid=2)
vector("command error no args", [("cmderror", 1, {"message": b'failed'})], streamid=2)
vector("command error empty args", [("cmderror", 1, {"message": b'failed', "args": []})], streamid=2)
vector("command error after settings", [("setencoder", 1, {"name": b'test-xor'}), ("settings", 1), ("ok", 1),
    ("cmderror", 1, {"message": b'%s: %s', "args": [b'a', b'b']})], streamid=2)
vector("command error long", [("cmderror", 1, {"message": APat(40000)})], streamid=2)

for size in (0, 1, 100, 32767, 32768, 32769):
    vector("error frame %d" % size, [("error", 1, {"msg": Pat(size), "errtype": b'server'})], streamid=2)
vector("error frame protocol", [("error", 9, {"msg": b'bad frame', "errtype": b'protocol'})], streamid=2)
vector("error frame after ok", [("ok", 1), ("error", 1, {"msg": b'boom', "errtype": b'server'})], streamid=2)

# --- text output ------------------------------------------------------------------


def text(name, atoms, mfs=MAX):
    vector("text " + name, [("text", 1, {"atoms": atoms})], streamid=2, mfs=mfs)


text("empty", [])
text("plain", [(b'hello', [], [])])
text("args", [(b'added %s changesets with %s changes', [b'3', b'12'], [])])
text("labels", [(b'warning!', [], [b'ui.warning', b'bold'])])
text("args and labels", [(b'%s', [b'x'], [b'l'])])
text("several atoms", [(b'a', [], []), (b'b %s', [b'1'], []), (b'c', [], [b'x'])])
text("utf-8 args", [(b'%s %s', ['caf\u00e9'.encode(), '\U0001f600'.encode()], [])])
text("format not ascii", [(b'ok', [], []), (b'caf\xc3\xa9', [], [])])
text("label not ascii", [(b'ok', [], [b'fine', b'l\xffabel'])])
text("format and label not ascii", [(b'\x80', [], [b'\x81'])])
for i, bad in enumerate([
    b'\xff', b'\x80', b'\xc0\x80', b'\xc2', b'\xe2\x82', b'\xe2\x82a', b'\xed\xa0\x80', b'\xf4\x90\x80\x80',
    b'\xf0\x80\x80\x80', b'\xf0\x9f\x98', b'a\xf0\x9f\x98b', b'\xef\xbf\xbd', b'\xe0\x80\x80', b'\xe0\xa0',
    b'\xf5\x80', b'\xc1\xbf', b'\xf4\x8f\xbf\xbf', b'\xed\x9f\xbf', b'\xed\xbf\xbf',
]):
    text("invalid utf-8 %d" % i, [(b'%s', [bad, b'ok'], [])])
rng = random.Random(6302)
for i in range(60):
    alphabet = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee,
                0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff]
    arg = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
    text("random utf-8 %d" % i, [(b'%s', [arg], [b'r'])])


def text_for_payload(target):
    n = target - 8
    for _ in range(10):
        got = len(b''.join(cborutil.streamencode([{b'msg': APat(n)}])))
        if got == target:
            return APat(n)
        n += target - got
    raise ValueError(target)


for mfs, target in ((MAX, 32768), (MAX, 32769), (65535, 65535), (1000, 1000), (1000, 1001), (10, 11)):
    text("payload %d max %d" % (target, mfs), [(text_for_payload(target), [], [])], mfs=mfs)

# --- what clientreactor sends first -------------------------------------------------

vector("protocol settings", [("protocolsettings", 1, {"encodings": [b'zstd-8mb', b'zlib', b'identity'], "name": b'heads'})])
vector("protocol settings one", [("protocolsettings", 1, {"encodings": [b'identity'], "name": b'x'})])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "hg-builders.json")
    doc = {
        "generator": "gen_builders.py",
        "mercurial": hgversion.version.decode(),
        "vectors": vectors,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


main()
