"""A drop-in ``HistoryProvider`` for QMTL strategies, backed by a Seamless server.

A strategy that uses the reference's provider swaps it in one line::

    # provider = SeamlessDataProvider(...)                       # before
    provider = SeamlessHistoryProvider("http://127.0.0.1:8080")  # after

The method set is the reference's ``HistoryProvider`` (qmtl.runtime.sdk.data_io):
``bind_stream``, and the coroutines ``fetch``, ``coverage``, ``ensure_range`` and
``fill_missing``. Conventions are converted at this boundary and nowhere else:

* ``fetch(start, end)`` is half-open ``[start, end)`` in both systems: passed through.
* ``ensure_range`` and ``fill_missing`` take a **closed** ``[start, end]`` in the
  reference. They ask Seamless for ``[start, end + interval)``, so the bar at ``end``
  is not dropped (the reference's own off-by-one).
* ``coverage`` answers in the reference's convention: inclusive ``(first_ts, last_ts)``
  pairs, i.e. Seamless' half-open ``[a, b)`` becomes ``(a, b - interval)``. Seamless
  coverage includes covered-but-empty ranges (market gaps), which the reference cannot
  represent: they are reported as covered, and fetch returns no bars there.

docs/python.md lists every semantic difference.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, List, Optional, Tuple

from ._optional import pandas
from .client import Client

__all__ = ["SeamlessHistoryProvider"]

try:  # Subclass the reference's ABC when QMTL is installed, so isinstance checks hold.
    from qmtl.runtime.sdk.data_io import HistoryProvider as _Base  # type: ignore
except ImportError:  # pragma: no cover - QMTL is not a dependency
    _Base = object


class SeamlessHistoryProvider(_Base):  # type: ignore[misc,valid-type]
    """QMTL's ``HistoryProvider`` over a Seamless server.

    ``client`` is a :class:`seamless.Client` or a URL (``token`` and ``timeout`` then go
    to the client). ``node_id`` maps every call to one Seamless node id, for strategies
    whose stream ids are QMTL node hashes; without it the ``node_id`` each call passes is
    used as the Seamless node id (the server's ``SEAMLESS_NODE_ALIASES`` can map ids
    outside the standard grammar). ``strategy``, ``partial_ok`` and the other keywords
    are passed to every :meth:`Client.fetch` (the server's default strategy,
    ``seamless``, backfills what is missing, as the reference's provider does).

    The metadata of the last fetch is ``last_fetch_metadata`` (a
    :class:`seamless.Metadata`), as on the reference's ``SeamlessDataProvider``; the
    returned DataFrame's ``attrs`` carry ``dataset_fingerprint``, ``coverage_bounds`` and
    ``seamless_metadata``. ``last_backfill_job`` is the job of the last
    ``ensure_range`` / ``fill_missing``.
    """

    def __init__(
        self,
        client: Any,
        *,
        node_id: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 300.0,
        poll_interval: float = 0.5,
        **fetch_options: Any,
    ):
        self.client = client if isinstance(client, Client) else Client(client, token=token, timeout=timeout)
        self.node_id = node_id
        self.poll_interval = poll_interval
        self.fetch_options = fetch_options
        self.last_fetch_metadata = None
        self.last_backfill_job = None
        self._stream_id: Optional[str] = None

    def bind_stream(self, stream: Any) -> None:
        """Associates the provider with a stream (anything with ``node_id``), as the
        reference's default does; a provider without its own ``node_id`` then serves
        the stream's."""
        self._stream_id = getattr(stream, "node_id", None)

    def _node(self, node_id: Optional[str]) -> str:
        node = self.node_id or node_id or self._stream_id
        if not node:
            raise ValueError("SeamlessHistoryProvider: no node id (pass node_id, or bind_stream first)")
        return node

    async def fetch(self, start: int, end: int, *, node_id: str, interval: int) -> Any:
        """Bars in ``[start, end)`` as a DataFrame with an int64 ``ts`` column (epoch
        seconds) and the payload columns, ``ts``-sorted and unique."""
        node = self._node(node_id)
        res = await asyncio.to_thread(self.client.fetch, node, int(interval), int(start), int(end), **self.fetch_options)
        self.last_fetch_metadata = res.metadata
        pd = pandas()
        if pd is None:
            raise ImportError("SeamlessHistoryProvider.fetch returns a pandas DataFrame: install pandas")
        # The reference's frames carry ts as an int64 column of epoch seconds.
        df = res.frame.reset_index(drop=True)
        df.insert(0, "ts", res.frame.index.asi8 // 1_000_000_000)
        df.attrs["dataset_fingerprint"] = res.metadata.dataset_fingerprint
        df.attrs["coverage_bounds"] = res.metadata.coverage_bounds
        df.attrs["seamless_metadata"] = res.metadata
        return df

    async def coverage(self, *, node_id: str, interval: int) -> List[Tuple[int, int]]:
        """Covered ranges as the reference reports them: inclusive ``(first, last)``
        bar timestamps."""
        ranges = await asyncio.to_thread(self.client.coverage, self._node(node_id), int(interval))
        iv = int(interval)
        out = []
        for a, b in ranges:
            first = -(-a // iv) * iv  # first grid point in [a, b)
            last = (b - 1) // iv * iv  # last grid point in [a, b)
            if first <= last:
                out.append((first, last))
        return out

    async def ensure_range(self, start: int, end: int, *, node_id: str, interval: int) -> None:
        """Makes sure history for the closed ``[start, end]`` is stored (a backfill job
        of ``[start, end + interval)``, waited for)."""
        await self._backfill_closed(start, end, node_id, interval)

    async def fill_missing(self, start: int, end: int, *, node_id: str, interval: int) -> None:
        """Backfills the gaps of the closed ``[start, end]``: Seamless backfills only
        what coverage lacks, so this is :meth:`ensure_range`."""
        await self._backfill_closed(start, end, node_id, interval)

    async def _backfill_closed(self, start: int, end: int, node_id: str, interval: int) -> None:
        iv = int(interval)
        if end < start:
            return  # an empty closed range: nothing to ensure, as in the reference
        # The closed range's last grid point is floor(end / iv) * iv; the half-open end
        # one interval past it keeps that bar (end + interval when end is on the grid).
        half_open_end = (math.floor(end) // iv + 1) * iv
        self.last_backfill_job = await asyncio.to_thread(
            self.client.backfill,
            self._node(node_id),
            iv,
            int(start),
            half_open_end,
            poll_interval=self.poll_interval,
        )
