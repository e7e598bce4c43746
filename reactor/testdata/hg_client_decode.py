#!/usr/bin/python3
"""Feed server frames to Mercurial 6.3's clientreactor; print what it decodes.

Reads JSON from stdin: {"requests": N, "frames": [hex, ...]}. Issues N
commands (request ids 1, 3, ...), feeds the frames, and prints JSON:
{"data": {requestid: hex of all response data}, "eos": [requestids],
 "errors": [messages]}.
"""

import json
import sys

from mercurial import wireprotoframing as framing


def main():
    doc = json.load(sys.stdin)
    c = framing.clientreactor(None, hasmultiplesend=True, buffersends=False)
    for i in range(doc["requests"]):
        _, _, meta = c.callcommand(b"cmd%d" % i, {})
        list(meta[b"framegen"])
    data, eos, errors = {}, [], []
    for h in doc["frames"]:
        raw = bytes.fromhex(h)
        hdr = framing.parseheader(raw)
        f = framing.frame(hdr.requestid, hdr.streamid, hdr.streamflags, hdr.typeid, hdr.flags, raw[8:])
        action, meta = c.onframerecv(f)
        if action == b"responsedata":
            rid = str(meta[b"request"].requestid)
            data[rid] = data.get(rid, "") + bytes(meta[b"data"]).hex()
            if meta[b"eos"]:
                eos.append(int(rid))
        elif action == b"error":
            errors.append(repr(meta))
    json.dump({"data": data, "eos": eos, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
