#!/usr/bin/python3
"""Drive Mercurial's frame reactors and record every action they take.

Run with the system Python that has Mercurial 6.3 importable:

    /usr/bin/python3 reactor/testdata/gen_reactor_vectors.py > reactor/testdata/hg-reactor-vectors.json

Each vector is a scenario: a reactor configuration and a list of steps (a
frame received, a command called, a response handed over, end of input). Each
step records what Mercurial answered: the action name, frames as hex (all
generators are drained at once, so lazy bookkeeping runs when the step is
taken), delivered values, error messages, or the exception it raised.

Values are written as JSON that keeps CBOR kinds apart: {"bytes": hex} for
byte strings, {"text": s} for text, {"map": [[k, v], ...]} for maps,
{"set": [...]} for sets, plain arrays for arrays, numbers, booleans and null.

The reactors need a ``ui`` only to hand it to stream encoders, which ignore
it, so None is passed: no configuration is read and no repository is needed.
"""

import json
import sys
import zlib

from mercurial import error, util, wireprotoframing as framing, wireprototypes
from mercurial.utils import cborutil

try:
    from mercurial import zstd

    zstd.__version__
except ImportError:
    zstd = None

ffs = framing.makeframefromhumanstring


def enc(v):
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, str):
        return {"text": v}
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    if isinstance(v, dict):
        return {"map": [[enc(k), enc(x)] for k, x in v.items()]}
    if isinstance(v, (set, frozenset)):
        return {"set": sorted((enc(x) for x in v), key=json.dumps)}
    raise TypeError("cannot encode %r" % (v,))


def cbor(v):
    return b"".join(cborutil.streamencode(v))


def parse(data):
    data = bytes(data)
    h = framing.parseheader(data)
    payload = data[framing.FRAME_HEADER_SIZE :]
    assert len(payload) == h.length
    return framing.frame(
        h.requestid, h.streamid, h.streamflags, h.typeid, h.flags, payload
    )


def framesout(gen):
    return [bytes(f).hex() for f in gen]


def exc(e):
    msg = e.args[0] if e.args else b""
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return {"action": "exception", "type": type(e).__name__, "message": str(msg)}


def result(action, meta):
    out = {"action": action.decode()}
    if action == b"sendframes":
        out["frames"] = framesout(meta[b"framegen"])
    elif action == b"error":
        if b"request" in meta:
            out["requestid"] = meta[b"request"].requestid
            out["type"] = enc(meta[b"type"])
            out["message"] = enc(meta[b"message"])
        else:
            out["message"] = meta[b"message"].decode("utf-8", "replace")
    elif action == b"runcommand":
        out["requestid"] = meta[b"requestid"]
        out["command"] = enc(meta[b"command"])
        out["args"] = enc(meta[b"args"])
        out["redirect"] = enc(meta[b"redirect"])
        out["data"] = enc(meta[b"data"])
    elif action == b"wantframe":
        out["state"] = meta[b"state"].decode()
    elif action == b"responsedata":
        out["requestid"] = meta[b"request"].requestid
        out["expectmore"] = bool(meta[b"expectmore"])
        out["eos"] = bool(meta[b"eos"])
        out["data"] = bytes(meta[b"data"]).hex()
    return out


# --- server scenarios -------------------------------------------------------


class CommandError(Exception):
    pass


def objiter(objs):
    """Yield objects; special markers raise, as a command function would."""
    for o in objs:
        if isinstance(o, tuple) and o and o[0] == "raise-command-error":
            raise error.WireprotoCommandError(o[1], o[2])
        if isinstance(o, tuple) and o and o[0] == "raise":
            raise Exception(o[1].decode())
        yield o


def objdesc(o):
    """JSON description of a response object for the Go side."""
    if isinstance(o, tuple) and o[0] == "raise-command-error":
        return {"commanderror": o[1].decode(), "args": enc(o[2])}
    if isinstance(o, tuple) and o[0] == "raise":
        return {"raise": o[1].decode()}
    if isinstance(o, wireprototypes.encodedresponse):
        return {"encoded": o.data.hex()}
    if isinstance(o, wireprototypes.indefinitebytestringresponse):
        return {"indefinite": [c.hex() for c in o.chunks]}
    if isinstance(o, wireprototypes.alternatelocationresponse):
        d = {"url": enc(o.url), "mediatype": enc(o.mediatype)}
        for a in ("size", "fullhashes", "fullhashseed", "serverdercerts", "servercadercerts"):
            v = getattr(o, a)
            if v is not None:
                d[a] = enc(v)
        return {"alternate": d}
    return {"value": enc(o)}


class Run:
    """One recorded scenario: subclasses set self.r (a reactor) and self.v (the vector)."""

    def step(self, desc, fn):
        try:
            res = fn()
        except Exception as e:
            res = exc(e)
        desc["result"] = res
        self.annotate(desc)
        self.v["steps"].append(desc)
        return res

    def annotate(self, desc):
        """Add reactor state to a step's description; nothing by default."""

    def frame(self, human=None, raw=None):
        data = bytes(ffs(human)) if human is not None else bytes(raw)
        desc = {"op": "frame", "hex": data.hex()}
        if human is not None:
            desc["human"] = human.decode("latin-1")
        return self.step(desc, lambda: result(*self.r.onframerecv(parse(data))))

    def frames(self, *humans):
        for h in humans:
            self.frame(h)


class ServerRun(Run):
    def __init__(self, name, deferoutput=False, note=None):
        self.name = name
        self.r = framing.serverreactor(None, deferoutput=deferoutput)
        self.v = {"name": name, "deferoutput": deferoutput, "steps": []}
        if note:
            self.v["note"] = note
        self.streams = {}

    def annotate(self, desc):
        desc["state"] = self.r._state.decode()

    def command(self, rid, name, args, data=None, streamid=1):
        st = self.streams.setdefault(("in", streamid), framing.stream(streamid))
        datafh = util.bytesio(data) if data is not None else None
        for f in framing.createcommandframes(st, rid, name, args, datafh):
            self.frame(raw=f)

    def outstream(self):
        def fn():
            s = self.r.makeoutputstream()
            self.streams[s.streamid] = s
            return {"action": "stream", "streamid": s.streamid}

        return self.step({"op": "makeoutputstream"}, fn)

    def objects(self, streamid, rid, objs):
        desc = {"op": "objects", "stream": streamid, "request": rid,
                "objects": [objdesc(o) for o in objs]}
        return self.step(desc, lambda: result(*self.r.oncommandresponsereadyobjects(
            self.streams[streamid], rid, objiter(objs))))

    def servererror(self, streamid, rid, msg):
        desc = {"op": "servererror", "stream": streamid, "request": rid, "message": msg.decode()}
        return self.step(desc, lambda: result(*self.r.onservererror(self.streams[streamid], rid, msg)))

    def commanderror(self, streamid, rid, msg, args=None):
        desc = {"op": "commanderror", "stream": streamid, "request": rid,
                "message": msg.decode(), "args": enc(args)}
        return self.step(desc, lambda: result(*self.r.oncommanderror(
            self.streams[streamid], rid, msg, args)))

    def textoutput(self, streamid, rid, atoms):
        desc = {"op": "textoutput", "stream": streamid, "request": rid,
                "atoms": [[enc(f), enc(list(a)), enc(list(l))] for f, a, l in atoms]}
        return self.step(desc, lambda: {"action": "sendframes", "frames": framesout(
            framing.createtextoutputframe(self.streams[streamid], rid, atoms))})

    def eof(self):
        return self.step({"op": "eof"}, lambda: result(*self.r.oninputeof()))


def recorder(make):
    """Return the list of vectors and a function that starts a recorded scenario."""
    out = []

    def run(name, **kw):
        r = make(name, **kw)
        out.append(r.v)
        return r

    return out, run


def server_vectors():
    out, run = recorder(ServerRun)

    def framed(name, *humans, **kw):
        """A scenario that only receives the given frames."""
        s = run(name, **kw)
        s.frames(*humans)
        return s

    # Receiving commands.
    s = run("one frame command")
    s.command(1, b"mycommand", {})
    s.eof()

    s = run("one argument")
    s.command(41, b"mycommand", {b"foo": b"bar"})

    s = run("many arguments")
    s.command(1, b"mycommand", {b"foo": b"bar", b"biz": b"baz", b"n": 42, b"l": [1, b"x", None, True]})

    s = run("simple command data")
    s.command(1, b"mycommand", {}, data=b"data!")

    s = run("command data exactly one frame")
    s.command(1, b"mycommand", {}, data=b"d" * 32768)

    s = run("command data several frames")
    s.command(1, b"mycommand", {b"k": b"v"}, data=b"e" * 70000)

    s = run("large arguments span frames")
    s.command(1, b"mycommand", {b"big": b"x" * 40000, b"other": b"y" * 30000})

    framed("multiple data frames",
        b"1 1 stream-begin command-request new|have-data cbor:{b'name': b'mycommand'}",
        b"1 1 0 command-data continuation data1",
        b"1 1 0 command-data continuation data2",
        b"1 1 0 command-data eos data3",
    )

    framed("argument and data",
        b"1 1 stream-begin command-request new|have-data cbor:{b'name': b'command', b'args': {b'key': b'val', b'foo': b'bar'}}",
        b"1 1 0 command-data continuation value1",
        b"1 1 0 command-data eos value2",
    )

    framed("empty command data",
        b"1 1 stream-begin command-request new|have-data cbor:{b'name': b'command'}",
        b"1 1 0 command-data eos ",
    )

    framed("request with redirect", b"1 1 stream-begin command-request new cbor:{b'name': b'foo', b'redirect': {b'targets': [b'a', b'b'], b'hashes': [b'sha256']}}")

    framed("command name and args of other kinds", b"1 1 stream-begin command-request new cbor:{b'name': b'foo', b'args': {b'a': {b'nested': [1, -2, 3]}, b'b': False, b'c': None, b'd': {1, 2}}}")

    s = run("text command name")
    s.frame(raw=framing.makeframe(1, 1, 1, 1, 1, b"\xa1\x44name\x63foo"))

    framed("new and continuation", b"1 1 stream-begin command-request new|continuation ")

    framed("neither new nor continuation", b"1 1 stream-begin command-request 0 ")

    framed("unexpected command data initially", b"1 1 stream-begin command-data 0 ignored")

    for t in (b"command-response", b"error-response", b"text-output", b"progress", b"stream-settings"):
        s = run("unexpected %s initially" % t.decode())
        s.frame(b"1 1 stream-begin %s 0 " % t)

    framed("unexpected command data while receiving",
        b"1 1 stream-begin command-request new|more cbor:{b'name': b'ignored'}",
        b"1 1 0 command-data eos ignored",
    )

    s = run("conflicting request id allowed after response")
    s.outstream()
    for i in range(3):
        s.frame(b"1 1 %s command-request new cbor:{b'name': b'command'}" % (b"stream-begin" if i == 0 else b"0"))
        s.objects(2, 1, [b"response%d" % i])

    framed("conflicting request id while receiving",
        b"1 1 stream-begin command-request new|more cbor:{b'name': b'command'}",
        b"1 1 0 command-request new cbor:{b'name': b'command1'}",
    )

    c1 = cbor({b"name": b"command1", b"args": {b"foo": b"bar", b"key1": b"val"}})
    c3 = cbor({b"name": b"command3", b"args": {b"biz": b"baz", b"key": b"val"}})
    s = run("interleaved commands")
    for rid, flags, data, sf in (
        (1, b"new|more", c1[0:6], b"stream-begin"),
        (3, b"new|more", c3[0:10], b"0"),
        (1, b"continuation|more", c1[6:9], b"0"),
        (3, b"continuation|more", c3[10:13], b"0"),
        (3, b"continuation", c3[13:], b"0"),
        (1, b"continuation", c1[9:], b"0"),
    ):
        s.frame(raw=framing.makeframe(rid, 1, framing.STREAM_FLAGS.get(sf, 0), 1,
                                      {b"new|more": 5, b"continuation|more": 6, b"continuation": 2}[flags], data))

    s = run("missing command data frame", note="partial request 1 is forgotten at input end")
    s.frames(
        b"1 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}",
        b"3 1 0 command-request new cbor:{b'name': b'command2'}",
    )
    s.eof()

    s = run("partial command at input end", note="partial request is forgotten at input end")
    s.frame(b"1 1 stream-begin command-request new|more cbor:{b'name': b'command1'}")
    s.eof()

    framed("command data without flags",
        b"1 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}",
        b"1 1 0 command-data 0 data",
    )

    framed("frame for non-receiving request",
        b"1 1 stream-begin command-request new cbor:{b'name': b'command1'}",
        b"3 1 0 command-request new|have-data cbor:{b'name': b'command3'}",
        b"5 1 0 command-data eos ignored",
    )

    framed("frame for active request while receiving",
        b"1 1 stream-begin command-request new cbor:{b'name': b'command1'}",
        b"3 1 0 command-request new|more cbor:{b'name': b'command3'}",
        b"1 1 0 command-request continuation ",
    )

    framed("request frames after request done",
        b"1 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}",
        b"1 1 0 command-request continuation|have-data ",
    )

    framed("expect data mismatch",
        b"1 1 stream-begin command-request new|more|have-data cbor:{b'name': b'x'}",
        b"1 1 0 command-request continuation ",
    )

    s = run("continuation frames with data")
    d = cbor({b"name": b"withdata", b"args": {b"a": b"b"}})
    s.frame(raw=framing.makeframe(1, 1, 1, 1, 1 | 4 | 8, d[:4]))
    s.frame(raw=framing.makeframe(1, 1, 0, 1, 2 | 8, d[4:]))
    s.frame(b"1 1 0 command-data continuation abc")
    s.frame(b"1 1 0 command-data eos def")

    framed("unexpected frame type while receiving",
        b"1 1 stream-begin command-request new|more cbor:{b'name': b'x'}",
        b"1 1 0 text-output 0 foo",
    )

    framed("continuation for unknown request while receiving",
        b"1 1 stream-begin command-request new|more cbor:{b'name': b'x'}",
        b"3 1 0 command-request continuation foo",
    )

    framed("bad flags while receiving",
        b"1 1 stream-begin command-request new|more cbor:{b'name': b'x'}",
        b"1 1 0 command-request new|continuation foo",
    )

    framed("continuation without new when idle",
        b"1 1 stream-begin command-request new cbor:{b'name': b'x'}",
        b"3 1 0 command-request continuation foo",
    )

    framed("unexpected frame when idle",
        b"1 1 stream-begin command-request new cbor:{b'name': b'x'}",
        b"1 1 0 command-data eos foo",
    )

    framed("missing name field", b"1 1 stream-begin command-request new cbor:{b'args': {}}")

    s = run("request not a map", note="mercurial checks name membership on a list")
    s.frame(b"1 1 stream-begin command-request new cbor:[1, 2]")

    framed("malformed cbor in request", b"1 1 stream-begin command-request new \\xa1")

    framed("empty request payload", b"1 1 stream-begin command-request new ")

    framed("integer request payload", b"1 1 stream-begin command-request new cbor:7")

    s = run("duplicate request on active command")
    s.command(1, b"command1", {})
    s.command(1, b"command1", {})

    s = run("duplicate request on active command not sent", deferoutput=True)
    s.command(1, b"command1", {})
    s.outstream()
    s.objects(2, 1, [b"response"])
    s.command(1, b"command1", {})

    s = run("duplicate request after send")
    s.command(1, b"command1", {})
    s.outstream()
    s.objects(2, 1, [b"response"])
    s.command(1, b"command1", {})

    # Streams.
    framed("even stream id", b"1 2 stream-begin command-request new cbor:{b'name': b'x'}")

    framed("zero stream id", b"1 0 stream-begin command-request new cbor:{b'name': b'x'}")

    framed("unknown stream without begin", b"1 1 0 command-request new cbor:{b'name': b'x'}")

    framed("stream end then frame without begin",
        b"1 1 stream-begin|stream-end command-request new cbor:{b'name': b'x'}",
        b"3 1 0 command-request new cbor:{b'name': b'y'}",
    )

    framed("stream end then begin again",
        b"1 1 stream-begin command-request new cbor:{b'name': b'x'}",
        b"3 1 stream-end command-request new cbor:{b'name': b'y'}",
        b"5 1 stream-begin command-request new cbor:{b'name': b'z'}",
    )

    framed("two client streams",
        b"1 1 stream-begin command-request new|more cbor:{b'name': b'x'}",
        b"3 3 stream-begin command-request new cbor:{b'name': b'y'}",
        b"1 3 0 command-request continuation ",
    )

    framed("encoded frame from client", b"1 1 stream-begin|encoded command-request new cbor:{b'name': b'x'}")

    framed("stream begin repeated on active stream",
        b"1 1 stream-begin command-request new cbor:{b'name': b'x'}",
        b"3 1 stream-begin command-request new cbor:{b'name': b'y'}",
    )

    # Protocol settings.
    framed("protocol settings no flags", b"0 1 stream-begin sender-protocol-settings 0 ")

    framed("protocol settings conflicting flags", b"0 1 stream-begin sender-protocol-settings continuation|eos ")

    framed("protocol settings empty payload", b"0 1 stream-begin sender-protocol-settings eos ")

    framed("protocol settings multiple objects", b"0 1 stream-begin sender-protocol-settings eos \\x46foobar\\x43foo")

    s = run("protocol settings content encodings")
    s.frame(b'0 1 stream-begin sender-protocol-settings eos cbor:{b"contentencodings": [b"a", b"b"]}')
    s.outstream()

    data = cbor({b"contentencodings": [b"value1", b"value2"]})
    s = run("protocol settings multiple frames")
    s.frame(raw=framing.makeframe(0, 1, 1, 8, 1, data[0:5]))
    s.frame(raw=framing.makeframe(0, 1, 0, 8, 2, data[5:]))

    framed("protocol settings bad cbor", b"0 1 stream-begin sender-protocol-settings eos badvalue")

    framed("protocol settings incomplete cbor", b"0 1 stream-begin sender-protocol-settings eos \\xa1")

    s = run("protocol settings not initial")
    s.command(1, b"mycommand", {})
    s.frame(b"0 1 0 sender-protocol-settings eos ")

    framed("protocol settings interrupted",
        b"0 1 stream-begin sender-protocol-settings continuation \\xa1",
        b"1 1 0 command-request new cbor:{b'name': b'x'}",
    )

    s = run("protocol settings without content encodings")
    s.frame(b"0 1 stream-begin sender-protocol-settings eos cbor:{b'other': 1}")
    s.command(1, b"x", {}, streamid=1)
    s.outstream()
    s.objects(2, 1, [b"r"])

    # Responses.
    def withcommand(name, rid=1, settings=None, **kw):
        s = run(name, **kw)
        if settings is not None:
            s.frame(b"0 1 stream-begin sender-protocol-settings eos " + b"cbor:" + settings)
        s.command(rid, b"mycommand", {})
        s.outstream()
        return s

    def responds(name, objs, **kw):
        """A scenario where request 1 answers with objs on output stream 2."""
        s = withcommand(name, **kw)
        s.objects(2, 1, objs)
        return s

    responds("simple response", [b"response"])

    responds("multi frame response", [b"x" * 32768 + b"y" * 100])

    responds("response of many objects is coalesced", [{b"i": i, b"v": b"z" * 900} for i in range(100)])

    responds("response objects near frame size", [b"a" * 32760, b"b" * 3, b"c" * 32764, b"d" * 10, b"e" * 70000, b"f"])

    s = withcommand("response of mixed values")
    s.objects(2, 1, [1, -1, 2**40, -(2**40), True, False, None, [], {}, [b"a", [b"b"]],
                     {b"k": {b"n": [1, 2]}}, {3, 1, 2}, b""])

    responds("empty response", [])

    responds("encoded response object", [wireprototypes.encodedresponse(b"\x83\x01\x02\x03"), b"after"])

    responds("indefinite bytestring response", [wireprototypes.indefinitebytestringresponse([b"chunk1", b"", b"chunk2" * 10000])])

    s = withcommand("alternate location response")
    s.objects(2, 1, [wireprototypes.alternatelocationresponse(
        url=b"http://example.com/x", mediatype=b"application/mercurial-cbor",
        size=42, fullhashes=[[b"sha256", b"\x01" * 32]], serverdercerts=[b"cert"])])

    responds("alternate location minimal", [wireprototypes.alternatelocationresponse(url=b"u", mediatype=b"m")])

    responds("alternate location after object", [b"first", wireprototypes.alternatelocationresponse(url=b"u", mediatype=b"m")])

    responds("object after alternate location", [wireprototypes.alternatelocationresponse(url=b"u", mediatype=b"m"), b"second"])

    responds("command error raised while iterating", [b"first", ("raise-command-error", b"bad thing %s", [b"arg"])])

    responds("command error raised first", [("raise-command-error", b"nope", None)])

    responds("exception raised while iterating", [b"first", ("raise", b"boom")])

    s = withcommand("server error")
    s.servererror(2, 1, b"some message")

    s = withcommand("command error")
    s.commanderror(2, 1, b"message %s", [b"x"])

    s = withcommand("command error without args")
    s.commanderror(2, 1, b"just a message")

    s = withcommand("text output")
    s.textoutput(2, 1, [(b"foo %s", [b"bar"], [b"label"]), (b"plain", [], [])])
    s.objects(2, 1, [b"done"])

    s = withcommand("response for inactive request")
    s.objects(2, 1, [b"r"])
    s.objects(2, 1, [b"again"])

    s = withcommand("server error for inactive request")
    s.servererror(2, 3, b"x")

    s = withcommand("two output streams")
    s.outstream()
    s.command(3, b"other", {})
    s.objects(4, 3, [b"on4"])
    s.objects(2, 1, [b"on2"])

    s = run("deferred response", deferoutput=True)
    s.command(1, b"mycommand", {})
    s.outstream()
    s.objects(2, 1, [b"response"])
    s.eof()

    s = run("deferred multiple responses", deferoutput=True)
    s.command(1, b"command1", {})
    s.command(3, b"command2", {})
    s.outstream()
    s.objects(2, 1, [b"response1"])
    s.objects(2, 3, [b"response2"])
    s.eof()

    s = run("deferred request id tracking", deferoutput=True)
    for rid in (1, 3, 5):
        s.command(rid, b"command%d" % rid, {})
    s.outstream()
    s.objects(2, 3, [b"response3"])
    s.servererror(2, 1, b"err1")
    s.commanderror(2, 5, b"err5")
    s.eof()

    s = run("deferred nothing", deferoutput=True)
    s.command(1, b"command1", {})
    s.eof()

    # Content encodings.
    for encname in (b"identity", b"zlib", b"zstd-8mb"):
        if encname == b"zstd-8mb" and not zstd:
            continue
        settings = b"{b'contentencodings': [b'%s']}" % encname
        s = withcommand("%s encoded response" % encname.decode(), settings=settings)
        s.objects(2, 1, [b"response", {b"k": b"v" * 100}])

        s = withcommand("%s encoded large response" % encname.decode(), settings=settings)
        s.objects(2, 1, [b"r" * 100000, {b"k": b"v" * 100}])

        s = withcommand("%s encoded two responses on one stream" % encname.decode(), settings=settings)
        s.objects(2, 1, [b"response1" * 20])
        s.command(3, b"second", {})
        s.objects(2, 3, [{b"b": b"response2" * 30}])
        s.servererror(2, 3, b"ignored") if False else None
        s.command(5, b"third", {})
        s.commanderror(2, 5, b"failed %s", [b"x"])
        s.command(7, b"fourth", {})
        s.objects(2, 7, [b"x", ("raise", b"boom")])

        s = withcommand("%s encoded empty response" % encname.decode(), settings=settings)
        s.objects(2, 1, [])

    s = withcommand("server prefers zstd", settings=b"{b'contentencodings': [b'identity', b'zlib', b'zstd-8mb']}")
    s.objects(2, 1, [b"response"])

    s = withcommand("server prefers zlib over identity", settings=b"{b'contentencodings': [b'identity', b'zlib']}")
    s.objects(2, 1, [b"response"])

    s = withcommand("client advertises only unknown encodings",
                    settings=b"{b'contentencodings': [b'br', b'lz4']}")
    s.objects(2, 1, [b"response"])

    s = withcommand("client advertises no encodings", settings=b"{b'contentencodings': []}")
    s.objects(2, 1, [b"response"])

    # Errors are sticky.
    s = run("frames after error")
    s.frames(
        b"1 1 stream-begin command-request 0 ",
        b"1 1 0 command-request new cbor:{b'name': b'x'}",
        b"1 2 stream-begin command-request new cbor:{b'name': b'x'}",
    )
    s.eof()

    return out


# --- client scenarios -------------------------------------------------------


class ClientRun(Run):
    def __init__(self, name, hasmultiplesend=False, buffersends=True, encoders=None, note=None):
        self.r = framing.clientreactor(
            None, hasmultiplesend=hasmultiplesend, buffersends=buffersends,
            clientcontentencoders=encoders)
        self.v = {"name": name, "hasmultiplesend": hasmultiplesend, "buffersends": buffersends,
                  "encoders": enc(encoders), "steps": []}
        if note:
            self.v["note"] = note

    def call(self, name, args, data=None, redirect=None):
        desc = {"op": "call", "name": enc(name), "args": enc(args),
                "data": enc(data), "redirect": enc(redirect)}

        def fn():
            datafh = util.bytesio(data) if data is not None else None
            req, action, meta = self.r.callcommand(name, args, datafh=datafh, redirect=redirect)
            out = result(action, meta)
            out["requestid"] = req.requestid
            return out

        return self.step(desc, fn)

    def flush(self):
        return self.step({"op": "flush"}, lambda: result(*self.r.flushcommands()))


def client_vectors():
    out, run = recorder(ClientRun)

    c = run("single send buffered")
    c.call(b"foo", {})
    c.flush()
    c.call(b"foo", {})
    c.flush()

    c = run("single send immediate", buffersends=False)
    c.call(b"foo", {b"a": b"b"})
    c.call(b"bar", {})

    c = run("multiple send immediate", hasmultiplesend=True, buffersends=False)
    c.call(b"command1", {})
    c.flush()
    c.call(b"command2", {})

    c = run("multiple send buffered", hasmultiplesend=True)
    c.call(b"command1", {b"k": b"v"})
    c.call(b"command2", {})
    c.flush()
    c.flush()
    c.call(b"command3", {})
    c.flush()

    c = run("flush with nothing queued")
    c.flush()
    c.call(b"x", {})
    c.flush()

    c = run("content encoders advertised once", hasmultiplesend=True, encoders=[b"zlib", b"identity"])
    c.call(b"command1", {})
    c.call(b"command2", {})
    c.flush()
    c.call(b"command3", {})
    c.flush()

    c = run("command with data", buffersends=False)
    c.call(b"push", {b"k": b"v"}, data=b"payload")

    c = run("command with empty data", buffersends=False)
    c.call(b"push", {}, data=b"")

    c = run("command with data of one full frame", buffersends=False)
    c.call(b"push", {}, data=b"d" * 32768)

    c = run("command with large data", buffersends=False)
    c.call(b"push", {}, data=b"e" * 70000)

    c = run("command with large arguments", buffersends=False)
    c.call(b"big", {b"x": b"y" * 70000})

    c = run("command with redirect", buffersends=False)
    c.call(b"foo", {}, redirect={b"targets": [b"a", b"b"], b"hashes": [b"sha256"]})

    c = run("command arguments of many kinds", buffersends=False)
    c.call(b"foo", {b"i": 5, b"l": [1, b"2"], b"m": {b"n": None}, b"t": True})

    # Receiving.
    c = run("odd stream")
    c.frame(b"1 1 0 1 0 foo")

    c = run("unknown stream")
    c.frame(b"1 0 0 1 0 foo")

    c = run("frame for inactive request")
    c.frame(b"1 2 stream-begin command-response eos foo")

    def sent(name, **kw):
        kw.setdefault("buffersends", False)
        c = run(name, **kw)
        c.call(b"foo", {})
        return c

    def sentframes(name, *humans, **kw):
        """A scenario where request 1 was sent and then the given frames arrive."""
        c = sent(name, **kw)
        c.frames(*humans)
        return c

    sentframes("text output at client", b"1 2 stream-begin text-output 0 foo")

    sentframes("progress at client", b"1 2 stream-begin progress 0 foo")

    sentframes("command request at client", b"1 2 stream-begin command-request new foo")

    sentframes("multiple response frames",
        b"1 2 stream-begin command-response 0 foo",
        b"1 2 0 command-response continuation bar",
        b"1 2 0 command-response eos baz",
        b"1 2 0 command-response eos again",
    )

    sentframes("response with eos and continuation",
        b"1 2 stream-begin command-response continuation|eos foo",
        b"1 2 0 command-response eos again",
    )

    sentframes("error response",
        b"1 2 stream-begin error-response 0 cbor:{b'type': b'server', b'message': [{b'msg': b'boom'}]}",
        b"1 2 0 command-response eos after",
    )

    sentframes("error response malformed", b"1 2 stream-begin error-response 0 \\xa1")

    sentframes("error response missing type", b"1 2 stream-begin error-response 0 cbor:{b'message': [{b'msg': b'boom'}]}")

    c = run("responses to two requests interleaved", hasmultiplesend=True, buffersends=False)
    c.call(b"a", {})
    c.call(b"b", {})
    c.frame(b"3 2 stream-begin command-response continuation three")
    c.frame(b"1 2 0 command-response continuation one")
    c.frame(b"1 2 0 command-response eos ")
    c.frame(b"3 4 stream-begin command-response eos four")

    sentframes("stream end removes stream",
        b"1 2 stream-begin|stream-end command-response continuation a",
        b"1 2 0 command-response eos b",
    )

    sentframes("stream end then begin again",
        b"1 2 stream-begin|stream-end command-response continuation a",
        b"1 2 stream-begin command-response eos b",
    )

    sentframes("encoded frame without settings", b"1 2 stream-begin|encoded command-response eos plain")

    # Stream settings.
    sentframes("stream settings no flags", b"1 2 stream-begin stream-settings 0 ")

    sentframes("stream settings conflicting flags", b"1 2 stream-begin stream-settings continuation|eos ")

    sentframes("stream settings empty payload", b"1 2 stream-begin stream-settings eos ")

    sentframes("stream settings bad cbor", b"1 2 stream-begin stream-settings eos badvalue")

    sentframes("stream settings incomplete cbor", b"1 2 stream-begin stream-settings eos \\x82\\x01")

    sentframes("stream settings identity",
        b'1 2 stream-begin stream-settings eos cbor:b"identity"',
        b"1 2 encoded command-response eos plain",
    )

    sentframes("stream settings for unknown request id", b'99 2 stream-begin stream-settings eos cbor:b"identity"')

    data = cbor(b"identity") + cbor({b"foo", b"bar"})
    c = sent("stream settings multiple objects")
    c.frame(raw=framing.makeframe(1, 2, 1, 9, 2, data))

    data = cbor(b"identity")
    c = sent("stream settings multiple frames")
    c.frame(raw=framing.makeframe(1, 2, 1, 9, 1, data[0:3]))
    c.frame(raw=framing.makeframe(1, 2, 0, 9, 2, data[3:]))
    c.frame(b"1 2 encoded command-response eos x")

    sentframes("stream settings invalid encoder", b'1 2 stream-begin stream-settings eos cbor:b"badvalue"')

    sentframes("stream settings with stream end", b'1 2 stream-begin|stream-end stream-settings eos cbor:b"zlib"')

    data = cbor(b"zlib")
    c = sent("stream settings continued with stream end")
    c.frame(raw=framing.makeframe(1, 2, 3, 9, 1, data[0:2]))
    c.frame(raw=framing.makeframe(1, 2, 0, 9, 2, data[2:]))

    c = sent("stream settings text name")
    c.frame(raw=framing.makeframe(1, 2, 1, 9, 2, b"\x64zlib"))

    zlibsettings = b'1 2 stream-begin stream-settings eos cbor:b"zlib"'
    zstdsettings = b"1 2 stream-begin stream-settings eos cbor:b'zstd-8mb'"

    def encodedsent(name, settings):
        """A scenario where request 1 was sent and stream 2 began with settings."""
        c = sent(name)
        c.frame(settings)
        return c

    def encodedresponse(c, rid, flags, data):
        """Receive an encoded command-response frame on stream 2."""
        c.frame(raw=framing.makeframe(rid, 2, 4, 3, flags, data))

    def bytewise(c, blob):
        """Receive blob one byte per continuation frame, then end the stream."""
        for i in range(len(blob)):
            encodedresponse(c, 1, 1, blob[i:i + 1])
        c.frame(b"1 2 stream-end command-response eos ")

    encoded = cbor({b"status": b"ok"})
    compressed = zlib.compress(encoded)
    c = encodedsent("zlib encoding", zlibsettings)
    encodedresponse(c, 1, 2, compressed)

    c = encodedsent("zlib encoding single byte frames", zlibsettings)
    bytewise(c, compressed)

    c = encodedsent("zlib bad data", zlibsettings)
    encodedresponse(c, 1, 2, b"not zlib at all")

    def multiple(name, encname):
        c = run(name, hasmultiplesend=True, buffersends=False)
        c.call(b"foo", {})
        c.call(b"foo", {})
        outstream = framing.outputstream(2)
        outstream.setencoder(None, encname)
        r1 = cbor({b"status": b"ok", b"extra": b"response1" * 10})
        r2 = cbor({b"status": b"error", b"extra": b"response2" * 10})
        c.frame(b"1 2 stream-begin stream-settings eos cbor:b'%s'" % encname)
        encodedresponse(c, 1, 1, outstream.encode(r1))
        encodedresponse(c, 1, 2, outstream.flush())
        encodedresponse(c, 3, 1, outstream.encode(r2))
        encodedresponse(c, 3, 2, outstream.flush())

    multiple("zlib multiple responses", b"zlib")
    if zstd:
        multiple("zstd multiple responses", b"zstd-8mb")

        c = encodedsent("zstd encoding", zstdsettings)
        encodedresponse(c, 1, 2, zstd.ZstdCompressor().compress(encoded))

        c = encodedsent("zstd encoding byte by byte", zstdsettings)
        o = framing.outputstream(2)
        o.setencoder(None, b"zstd-8mb")
        bytewise(c, o.encode(cbor([b"abc" * 50, {b"k": 1}])) + o.flush())

        c = encodedsent("zstd bad data", zstdsettings)
        encodedresponse(c, 1, 2, b"\x28\xb5\x2f\xfd\xff\xff\xff\xff\xff")

    c = sent("zlib decoder with extra values")
    c.frame(raw=framing.makeframe(1, 2, 1, 9, 2, cbor(b"zlib") + cbor(1)))

    # A full exchange: client frames go through a real server reactor and back.
    c = run("round trip through mercurial server", hasmultiplesend=True, buffersends=False,
            encoders=[b"zlib", b"identity"])
    srv = framing.serverreactor(None)
    res = c.call(b"cmd", {b"a": b"b"})
    for h in res["frames"]:
        srv.onframerecv(parse(bytes.fromhex(h)))
    st = srv.makeoutputstream()
    _, meta = srv.oncommandresponsereadyobjects(st, 1, iter([b"value", {b"k": [1, 2]}]))
    for f in meta[b"framegen"]:
        c.frame(raw=f)

    return out


def main():
    framing.populatestreamencoders()
    from mercurial import util as hgutil

    doc = {
        "generator": "reactor/testdata/gen_reactor_vectors.py",
        "mercurial": hgutil.version().decode(),
        "encoders": [e.decode() for e in framing.STREAM_ENCODERS_ORDER],
        "server": server_vectors(),
        "client": client_vectors(),
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
