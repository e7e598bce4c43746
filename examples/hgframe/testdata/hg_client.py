#!/usr/bin/python3
"""Call the hgframe example server with Mercurial's own clientreactor.

usage: hg_client.py HOST PORT [ENCODING]

Runs echo, stream, fail and an unknown command over one plain TCP socket,
with Mercurial's wireprotoframing.clientreactor building the requests and
reading the responses, and prints one line per decoded response object:

    echo ok {b'message': b'hello'}
    stream ok 1000 objects, last {b'index': 999, b'line': b'line 1000 of 1000'}
    fail error b'fail: %s' [b'on purpose']
"""
import socket
import sys

from mercurial import ui as uimod
from mercurial import wireprotoframing
from mercurial.utils import cborutil


def call(sock, fh, reactor, name, args):
    request, action, meta = reactor.callcommand(name, args)
    assert action == b'sendframes', action
    for f in meta[b'framegen']:
        sock.sendall(f)
    data = b''
    while True:
        frame = wireprotoframing.readframe(fh)
        if frame is None:
            raise SystemExit('server closed the connection during %r' % name)
        action, meta = reactor.onframerecv(frame)
        if action == b'responsedata':
            assert meta[b'request'].requestid == request.requestid
            data += meta[b'data']
            if meta[b'eos']:
                return cborutil.decodeall(data)
        elif action == b'error':
            raise SystemExit('reactor error: %r' % meta)
        elif action != b'noop':
            raise SystemExit('unexpected action %r: %r' % (action, meta))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    encoders = [e.encode() for e in sys.argv[3:]] or None
    reactor = wireprotoframing.clientreactor(
        uimod.ui(), hasmultiplesend=True, buffersends=False,
        clientcontentencoders=encoders)
    sock = socket.create_connection((host, port))
    fh = sock.makefile('rb')

    objs = call(sock, fh, reactor, b'echo', {b'message': b'hello', b'n': 42})
    print('echo', objs[0][b'status'].decode(), sorted(objs[1].items()))

    objs = call(sock, fh, reactor, b'stream', {b'count': 1000})
    assert objs[0] == {b'status': b'ok'}, objs[0]
    for i, o in enumerate(objs[1:]):
        assert o == {b'index': i, b'line': b'line %d of 1000' % (i + 1)}, o
    print('stream ok', len(objs) - 1, 'objects, last', sorted(objs[-1].items()))

    for name, args in ((b'fail', {b'message': b'on purpose'}), (b'nope', {})):
        objs = call(sock, fh, reactor, name, args)
        assert len(objs) == 1, objs
        err = objs[0][b'error']
        print(name.decode(), objs[0][b'status'].decode(), err[b'message'], err.get(b'args'))

    sock.close()


if __name__ == '__main__':
    main()
