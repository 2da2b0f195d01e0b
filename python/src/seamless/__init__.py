"""Seamless for Python: gap-free, quality-checked market-data bars from a Seamless server.

    >>> import seamless
    >>> bars = seamless.Client("http://127.0.0.1:8080").fetch("ohlcv:demo:BTC-USD:1m", 60, "2024-01-01", "2024-01-02")
    >>> bars.frame.close.mean(), bars.metadata.coverage_ratio

The core is the standard library; pandas (DataFrames), pyarrow and Polars are used when
installed. Errors are typed (:mod:`seamless.errors`); ``seamless.qmtl`` is a drop-in
``HistoryProvider`` for QMTL strategies. docs/python.md has the whole API.
"""

from .client import API_MAJOR, Client, FetchResult
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .metadata import BackfillInfo, BackfillJob, Metadata, ReportRecord, SeriesInfo, TierCounts
from ._times import to_epoch
from .stream import Event, Subscription

__version__ = "0.1.0"

__all__ = [
    "API_MAJOR",
    "Client",
    "FetchResult",
    "Metadata",
    "TierCounts",
    "BackfillInfo",
    "BackfillJob",
    "SeriesInfo",
    "ReportRecord",
    "to_epoch",
    "Event",
    "Subscription",
] + list(_errors_all)
