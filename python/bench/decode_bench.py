"""Bars/s from a live `seamless serve` into a DataFrame, per wire format.

    /usr/bin/python3 python/bench/decode_bench.py --server http://127.0.0.1:8080 [--bars 1000000]

Warms the store first (the range is backfilled once), then times each wire format's
client.fetch — request, server encoding, transfer over loopback, decoding and the
DataFrame with its UTC index — best of --repeat runs. Results are recorded in
docs/benchmarks.md. Formats whose decoder is not installed are skipped and say so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import seamless  # noqa: E402
from seamless._optional import numpy, pandas, pyarrow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--node", default="ohlcv:demo:BENCH-USD:1m")
    args = ap.parse_args()
    c = seamless.Client(args.server, timeout=600)
    start, end = 1_600_000_020, 1_600_000_020 + 60 * args.bars
    t = time.perf_counter()
    res = c.fetch(args.node, 60, start, end, wire="json")
    print(f"warm-up (backfill) {time.perf_counter() - t:.2f}s, {res.metadata.rows} bars")
    print(f"python {sys.version.split()[0]}, pandas {getattr(pandas(), '__version__', 'absent')}, "
          f"numpy {getattr(numpy(), '__version__', 'absent')}, pyarrow {getattr(pyarrow(), '__version__', 'absent')}")
    for wire in ("arrow", "csv", "json"):
        try:
            best = min(timed(c, args.node, start, end, wire) for _ in range(args.repeat))
        except ImportError as e:
            print(f"{wire:6s} skipped: {e}")
            continue
        decoder = {"arrow": "pyarrow" if pyarrow() else "numpy", "csv": "pandas.read_csv" if pandas() else "csv", "json": "json"}[wire]
        print(f"{wire:6s} ({decoder:15s}) {best:6.3f}s  {args.bars / best:12,.0f} bars/s")


def timed(c: seamless.Client, node: str, start: int, end: int, wire: str) -> float:
    t = time.perf_counter()
    res = c.fetch(node, 60, start, end, wire=wire, strategy="fail_fast")
    elapsed = time.perf_counter() - t
    assert res.metadata.rows == (end - start) // 60
    return elapsed


if __name__ == "__main__":
    main()
