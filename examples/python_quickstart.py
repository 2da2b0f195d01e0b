"""Seamless from Python, notebook style: run each block in a notebook, or the file.

    seamless serve &                     # or: go run ./cmd/seamless serve &
    PYTHONPATH=python/src /usr/bin/python3 examples/python_quickstart.py

Needs pandas for the DataFrame parts (Debian: apt-get install python3-pandas).
"""

import datetime as dt
import os

import seamless
from seamless.qmtl import SeamlessHistoryProvider

URL = os.environ.get("SEAMLESS_URL", "http://127.0.0.1:8080")
NODE = "ohlcv:demo:BTC-USD:1m"

# %% Three lines from import to DataFrame.
client = seamless.Client(URL)
bars = client.fetch(NODE, 60, "2024-01-01", "2024-01-02")
print(bars.frame.head())

# %% The metadata says how complete and how fresh the answer is (SPEC §2).
md = bars.metadata
print(f"{md.rows} bars, coverage {md.coverage_ratio:.0%}, served from {md.sources}, downgraded={md.downgraded}")

# %% Hourly OHLCV from the minute bars, with pandas.
daily = bars.frame.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
print(daily.tail(3))

# %% Only what is stored: fail_fast raises a typed error for what is missing...
try:
    client.fetch(NODE, 60, "2024-03-01", "2024-03-02", strategy="fail_fast")
except seamless.CoverageIncomplete as e:
    print("missing:", e.missing)
# ...unless partial results are fine.
part = client.fetch(NODE, 60, dt.datetime(2024, 1, 1, 12), "2024-01-03", strategy="fail_fast", partial_ok=True)
print(f"partial: {part.metadata.rows} bars, coverage {part.metadata.coverage_ratio:.0%}")

# %% A month in the background, with progress.
job = client.backfill("ohlcv:demo:ETH-USD:5m", 300, "2024-01-01", "2024-02-01",
                      progress=lambda j: print(f"  {j.state}: {j.chunks_done}/{j.chunks_total} chunks, {j.bars} bars"))
print(client.coverage("ohlcv:demo:ETH-USD:5m"))

# %% What is stored, and the conformance reports of a series.
for s in client.series():
    print(s.node_id, s.interval, s.bounds, s.fragments)
print(client.reports(NODE, limit=1)[0].flags)

# %% A QMTL strategy's HistoryProvider, swapped in one line.
import asyncio  # noqa: E402

provider = SeamlessHistoryProvider(URL)
df = asyncio.run(provider.fetch(1704067200, 1704070800, node_id=NODE, interval=60))
print(df[["ts", "close"]].head(3), asyncio.run(provider.coverage(node_id=NODE, interval=60)))
