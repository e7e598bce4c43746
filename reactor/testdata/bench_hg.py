#!/usr/bin/python3
"""Time Mercurial 6.3's frame reactors on the workloads of reactor/bench_test.go.

Prints one JSON object: nanoseconds per operation for
  server_request  a single-frame command request handed to serverreactor
                  until it says runcommand
  server_cycle    that, then the response objects turned into frame bytes
  client_frame    one command-response frame handed to clientreactor until
                  it says responsedata

Usage: /usr/bin/python3 reactor/testdata/bench_hg.py [seconds-per-workload]
"""

import json
import sys
import time

from mercurial import wireprotoframing as framing

ffs = framing.makeframefromhumanstring

REQUEST = b"cbor:{b'name': b'heads', b'args': {b'foo': b'bar'}}"
RESPONSE_OBJECTS = [{b'node': b'0123456789abcdef0123', b'rev': 42}, [b'a', b'b', b'c']]
RESPONSE_PAYLOAD = b"cbor:{b'node': b'0123456789abcdef0123', b'rev': 42, b'tags': [b'tip', b'default']}"


def parse(data):
    data = bytes(data)
    h = framing.parseheader(data)
    return framing.frame(h.requestid, h.streamid, h.streamflags, h.typeid, h.flags, data[8:])


def timeit(fn, seconds):
    """CPU nanoseconds per operation of fn(n), for the first n = 1, 2, 4, ...
    whose run takes at least `seconds` of process CPU time (which counts
    Python's garbage collector, as getrusage counts Go's, but not the
    other processes of a loaded machine)."""
    n = 1
    while True:
        start = time.process_time()
        fn(n)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return elapsed * 1e9 / n
        n *= 2


REQUEST_FRAMES = [
    parse(ffs(b'%d 1 %s command-request new %s' % (rid, b'stream-begin' if rid == 1 else b'0', REQUEST)))
    for rid in range(1, 32768, 2)
]


def requests(n):
    frames = REQUEST_FRAMES
    done = 0
    while done < n:
        r = framing.serverreactor(None)
        for f in frames[: n - done]:
            action, meta = r.onframerecv(f)
            assert action == b'runcommand'
            done += 1


def cycle(n):
    frames = [parse(ffs(b'%d 1 %s command-request new %s' % (rid, b'stream-begin' if rid == 1 else b'0', REQUEST)))
              for rid in (1, 3)]
    r = framing.serverreactor(None)
    out = r.makeoutputstream()
    again = parse(ffs(b'1 1 0 command-request new ' + REQUEST))
    for i in range(n):
        f = frames[i & 1]
        if i >= 2 and i & 1 == 0:
            f = again
        action, meta = r.onframerecv(f)
        assert action == b'runcommand', (action, meta)
        action, meta = r.oncommandresponsereadyobjects(out, f.requestid, RESPONSE_OBJECTS)
        b''.join(meta[b'framegen'])


def client_frames(n):
    c = framing.clientreactor(None, hasmultiplesend=True, buffersends=False)
    req, action, meta = c.callcommand(b'heads', {})
    list(meta[b'framegen'])
    first = parse(ffs(b'1 2 stream-begin command-response continuation ' + RESPONSE_PAYLOAD))
    f = parse(ffs(b'1 2 0 command-response continuation ' + RESPONSE_PAYLOAD))
    c.onframerecv(first)
    for _ in range(n):
        action, meta = c.onframerecv(f)
        assert action == b'responsedata'


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print(json.dumps({
        "server_request": timeit(requests, seconds),
        "server_cycle": timeit(cycle, seconds),
        "client_frame": timeit(client_frames, seconds),
    }))


if __name__ == "__main__":
    main()
