#!/usr/bin/python3
"""Time Mercurial's frame reactors on inputs the Go report hands over.

Run by bench (go run ./bench/cmd/report) under the system Python that has
Mercurial 6.3 importable:

    /usr/bin/python3 bench/peers/hg_reactor_timing.py INPUT.json

INPUT.json holds {"mintime": seconds, "cases": {name: {...}}}; every case
carries the wire bytes as hex ("batch") and how many operations one pass over
them is ("n"). Each pass starts a fresh reactor, reads the frames out of the
bytes with Mercurial's own readframe (as its HTTP server does) and hands them
to the reactor, so the work matches the Go side: bytes in, actions out.

Prints one JSON object: {"version": ..., "cases": {name: {"ns_per_op": wall,
"cpu_ns_per_op": process CPU, "ops": n, "output": hex of the first pass's
output where there is one}}}.
"""

import io
import json
import sys
import time

from mercurial import __version__, wireprotoframing as framing
from mercurial.utils import cborutil


def server_deliver(case):
    """Single-frame command requests, each delivered as runcommand."""
    batch = bytes.fromhex(case["batch"])
    n = case["n"]

    def run():
        r = framing.serverreactor(None)
        fh = io.BytesIO(batch)
        got = 0
        while True:
            f = framing.readframe(fh)
            if f is None:
                break
            action, meta = r.onframerecv(f)
            if action != b"runcommand":
                raise SystemExit("unexpected action %r %r" % (action, meta))
            got += 1
        if got != n:
            raise SystemExit("delivered %d of %d" % (got, n))
        return b""

    return run


def server_cycle(case):
    """Request frame in, command delivered, response objects out as bytes."""
    batch = bytes.fromhex(case["batch"])
    n = case["n"]
    obj = cborutil.decodeall(bytes.fromhex(case["object"]))[0]

    def run():
        r = framing.serverreactor(None)
        stream = r.makeoutputstream()
        fh = io.BytesIO(batch)
        out = []
        while True:
            f = framing.readframe(fh)
            if f is None:
                break
            action, meta = r.onframerecv(f)
            if action != b"runcommand":
                raise SystemExit("unexpected action %r %r" % (action, meta))
            action, meta = r.oncommandresponsereadyobjects(
                stream, meta[b"requestid"], [obj]
            )
            if action != b"sendframes":
                raise SystemExit("unexpected action %r %r" % (action, meta))
            out.append(b"".join(meta[b"framegen"]))
        if len(out) != n:
            raise SystemExit("answered %d of %d" % (len(out), n))
        return out[0]

    return run


def client_frames(case):
    """Command-response frames received by a client for one request."""
    batch = bytes.fromhex(case["batch"])
    n = case["n"]

    def run():
        c = framing.clientreactor(None)
        c.callcommand(b"heads", {})
        action, meta = c.flushcommands()
        b"".join(meta[b"framegen"])
        fh = io.BytesIO(batch)
        got = 0
        while True:
            f = framing.readframe(fh)
            if f is None:
                break
            action, meta = c.onframerecv(f)
            if action != b"responsedata":
                raise SystemExit("unexpected action %r %r" % (action, meta))
            got += 1
        if got != n:
            raise SystemExit("received %d of %d" % (got, n))
        return b""

    return run


KINDS = {
    "server_deliver": server_deliver,
    "server_cycle": server_cycle,
    "client_frames": client_frames,
}


def measure(run, n, mintime):
    """Wall and CPU (process_time) nanoseconds per op over at least mintime."""
    output = run()  # warm up, and keep the first output for comparison
    passes = 0
    start = time.perf_counter_ns()
    cpustart = time.process_time_ns()
    while True:
        run()
        passes += 1
        elapsed = time.perf_counter_ns() - start
        if elapsed >= mintime * 1e9:
            break
    cpu = time.process_time_ns() - cpustart
    ops = passes * n
    return elapsed / ops, cpu / ops, ops, output


def main():
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    result = {}
    for name, case in spec["cases"].items():
        run = KINDS[case["kind"]](case)
        ns, cpu, ops, output = measure(run, case["n"], spec["mintime"])
        result[name] = {
            "ns_per_op": ns,
            "cpu_ns_per_op": cpu,
            "ops": ops,
            "output": output.hex(),
        }
    json.dump(
        {
            "version": __version__.version.decode(),
            "python": sys.version.split()[0],
            "cases": result,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
