"""A burst of concurrent uncovered fetches against a fresh `seamless serve`: how many are
answered and how many refused with 429 (docs/benchmarks.md, Admission).

    go build -o /tmp/seamless ./cmd/seamless && /usr/bin/python3 python/bench/burst.py /tmp/seamless [clients]

Each of the clients asks at once for 12 h of a different uncovered day of a demo series
(the demo source sleeping 200 ms per call, as a real exchange would take), three runs.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

binary = sys.argv[1]
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 24
addr = "127.0.0.1:18123"
data_dir = tempfile.mkdtemp(prefix="seamless-burst-")
server = subprocess.Popen(
    [binary, "serve", "--addr", addr, "--data-dir", data_dir],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    env=dict(os.environ, SEAMLESS_DEMO_LATENCY="200ms"),
)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{addr}/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    codes = []

    def one(day):
        start = 1704067200 + day * 86400
        url = f"http://{addr}/v1/bars?node_id=ohlcv:demo:BURST-USD:1m&interval=60&start={start}&end={start + 43200}&format=arrow"
        try:
            with urllib.request.urlopen(url, timeout=120) as r:
                r.read()
                codes.append(r.status)
        except urllib.error.HTTPError as e:
            codes.append(e.code)

    for run in range(3):
        codes.clear()
        threads = [threading.Thread(target=one, args=(run * 200 + k,)) for k in range(clients)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"run {run}: {codes.count(200)} x 200, {codes.count(429)} x 429, others {len(codes) - codes.count(200) - codes.count(429)}, {time.time() - t0:.2f} s")
finally:
    server.terminate()
    server.wait()
