# Times one workload of Mercurial 6.3 for go run ./bench/cmd/report.
#
# Usage: python3 hg_timer.py BENCH_HG_PY WORKLOAD MINTIME
#
# WORKLOAD is a function of reactor/testdata/bench_hg.py (requests, cycle,
# client_frames), or readframe:SIZE: Mercurial's wireprotoframing.readframe
# reading one frame with a SIZE-byte payload from an in-memory file (the
# file rewound before each read, as the Go side rewinds its reader).
#
# Everything a workload needs is built before the clock starts; the op count
# doubles until one run lasts MINTIME seconds. Prints wall and process CPU
# nanoseconds per op as JSON.
import io
import json
import os
import sys
import time

from mercurial import wireprotoframing as framing


def readframe_workload(size):
    wire = bytes(framing.makeframe(1, 2, framing.STREAM_FLAG_BEGIN_STREAM,
                                   framing.FRAME_TYPE_COMMAND_RESPONSE,
                                   framing.FLAG_COMMAND_RESPONSE_CONTINUATION,
                                   bytes(i % 256 for i in range(size))))
    fh = io.BytesIO(wire)
    readframe = framing.readframe

    def run(n):
        for _ in range(n):
            fh.seek(0)
            f = readframe(fh)
        assert len(f.payload) == size
    return run


def main():
    script, workload, mintime = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if workload.startswith("readframe:"):
        fn = readframe_workload(int(workload.split(":", 1)[1]))
    else:
        sys.path.insert(0, os.path.dirname(script))
        import bench_hg
        fn = getattr(bench_hg, workload)
    fn(1)
    n = 1
    while True:
        w0, c0 = time.perf_counter_ns(), time.process_time_ns()
        fn(n)
        w, c = time.perf_counter_ns() - w0, time.process_time_ns() - c0
        if w >= mintime * 1e9:
            break
        n *= 2
    print(json.dumps({"ns_per_op": w / n, "cpu_ns_per_op": c / n, "ops": n}))


main()
