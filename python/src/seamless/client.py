"""The client of a Seamless server's HTTP API (docs/api.md), standard library only."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _frames
from ._optional import polars
from ._times import interval_of, to_epoch
from .errors import (
    BackfillFailed,
    ConnectionFailed,
    IncompatibleServer,
    MalformedResponse,
    SeamlessError,
    ServerError,
    Timeout,
    code_of_status,
    error_class,
)
from .metadata import BackfillJob, Metadata, Range, ReportRecord, SeriesInfo
from .stream import Subscription

__all__ = ["Client", "FetchResult", "API_MAJOR"]

#: The API major version this client speaks; /healthz must report "1.x".
API_MAJOR = "1"

_SLA_FIELDS = ("max_wait_storage_ms", "max_wait_backfill_ms", "max_wait_live_ms", "total_deadline_ms", "max_sync_gap_bars")
_STRATEGIES = ("seamless", "fail_fast", "auto_backfill", "partial_fill")


@dataclass(frozen=True)
class FetchResult:
    """Bars and what describes them. ``frame`` is a pandas DataFrame indexed by a UTC
    DatetimeIndex named ``ts`` when pandas is installed, else a dict of column lists
    (``ts`` in epoch seconds first). ``wire`` is the wire format it came in."""

    frame: Any
    metadata: Metadata
    wire: str

    def __len__(self) -> int:
        return self.metadata.rows

    def to_polars(self) -> Any:
        """The bars as a Polars DataFrame with a ``ts`` column (UTC datetimes)."""
        pl = polars()
        if pl is None:
            raise ImportError("FetchResult.to_polars needs polars, which is not installed")
        if isinstance(self.frame, dict):
            df = pl.DataFrame(self.frame)
            return df.with_columns(pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC"))
        return pl.from_pandas(self.frame.reset_index())


class Client:
    """A Seamless server at ``url`` (such as ``http://127.0.0.1:8080``).

    ``token`` is sent as ``Authorization: Bearer``; without one the ``SEAMLESS_API_TOKEN``
    environment variable is used, as the CLI does. ``timeout`` (seconds) bounds every
    connect and every read. A 429 or 503 answer is retried up to ``retries`` times after
    the server's ``Retry-After`` (capped at ``max_retry_wait`` seconds); then its typed
    exception is raised. Before its first ``/v1`` request the client checks that
    ``/healthz`` reports an API version of major :data:`API_MAJOR`.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        timeout: float = 60.0,
        *,
        retries: int = 2,
        max_retry_wait: float = 30.0,
        wire: str = "auto",
        check_version: bool = True,
    ):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Seamless URL {url!r}: want http(s)://host[:port]")
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("SEAMLESS_API_TOKEN") or None
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        _frames.choose_wire(wire)
        self.wire = wire
        self._check = check_version
        self._checked = False
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:
        return f"seamless.Client({self.url!r})"

    # --- routes ---------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """The ``/healthz`` document (``status``, ``api_version``), after checking the
        version: :class:`IncompatibleServer` when its major is not :data:`API_MAJOR`."""
        doc = self._json("GET", "/healthz")
        version = doc.get("api_version") if isinstance(doc, dict) else None
        if not isinstance(version, str) or version.split(".")[0] != API_MAJOR:
            raise IncompatibleServer(
                f"server reports api_version {version!r}; this client speaks {API_MAJOR}.x"
                + (" (a server older than API 1.0, or not a Seamless server)" if version is None else ""),
                url=self.url + "/healthz",
                api_version=version,
            )
        self._checked = True
        return doc

    def fetch(
        self,
        node: str,
        interval: Optional[Any] = None,
        start: Any = None,
        end: Any = None,
        *,
        strategy: Optional[str] = None,
        partial_ok: bool = False,
        as_of: Any = None,
        world_id: Optional[str] = None,
        execution_domain: Optional[str] = None,
        min_coverage: Optional[float] = None,
        max_lag_seconds: Optional[float] = None,
        sla: Optional[str] = None,
        on_violation: Optional[str] = None,
        conformance: Optional[str] = None,
        fingerprint: bool = False,
        include_forming: bool = False,
        wire: Optional[str] = None,
        **budgets: int,
    ) -> FetchResult:
        """Bars of ``node`` in ``[start, end)`` (SPEC §2).

        ``interval`` is seconds (or a timedelta); None takes it from the node id's
        timeframe. ``start``/``end``/``as_of`` take datetimes, pandas Timestamps, ISO
        strings or epoch seconds. ``strategy`` is ``seamless`` (the server's default),
        ``fail_fast``, ``auto_backfill`` or ``partial_fill``; ``sla`` a preset name, and
        the budget keywords (``max_wait_storage_ms``, ``max_wait_backfill_ms``,
        ``max_wait_live_ms``, ``total_deadline_ms``, ``max_sync_gap_bars``) and
        ``on_violation`` override its fields. ``wire`` overrides the client's format.
        """
        if start is None or end is None:
            raise _bad("start and end are required", "start" if start is None else "end")
        unknown = set(budgets) - set(_SLA_FIELDS)
        if unknown:
            raise TypeError(f"fetch() got unexpected keyword arguments {sorted(unknown)}")
        if strategy is not None and strategy not in _STRATEGIES:
            raise _bad(f"unknown strategy {strategy!r} (want {', '.join(_STRATEGIES)})", "strategy")
        q: Dict[str, Any] = {
            "node_id": node,
            "interval": interval_of(node, interval),
            "start": to_epoch(start, "start"),
            "end": to_epoch(end, "end"),
        }
        if strategy:
            q["strategy"] = strategy
        if partial_ok:
            q["partial_ok"] = "true"
        if as_of is not None:
            q["as_of"] = to_epoch(as_of, "as_of")
        for name, value in (
            ("world_id", world_id),
            ("execution_domain", execution_domain),
            ("min_coverage", min_coverage),
            ("max_lag_seconds", max_lag_seconds),
            ("sla", sla),
            ("on_violation", on_violation),
            ("conformance", conformance),
        ):
            if value is not None:
                q[name] = value
        for name, value in budgets.items():
            q[name] = int(value)
        if fingerprint:
            q["fingerprint"] = "true"
        if include_forming:
            q["include_forming"] = "true"
        chosen = _frames.choose_wire(wire or self.wire)
        q["format"] = chosen
        status, headers, body, url = self._request("GET", "/v1/bars", q)
        if chosen == "arrow":
            cols, meta = _frames.decode_arrow(body, url)
        elif chosen == "csv":
            cols, meta = _frames.decode_csv(body, headers.get(_frames.METADATA_HEADER), url)
        else:
            cols, meta = _frames.decode_json(body, url)
        md = Metadata.from_dict(meta, url=url)
        rows = len(cols[1]["ts"]) if "ts" in cols[1] else -1
        if rows != md.rows:
            # A stream cut short after the status line: the CSV has fewer rows.
            raise MalformedResponse(f"answer has {rows} bars, its metadata says {md.rows} (truncated?)", url=url)
        return FetchResult(frame=_frames.to_frame(cols), metadata=md, wire=chosen)

    def coverage(self, node: str, interval: Optional[Any] = None) -> List[Range]:
        """Stored coverage of a series: sorted, disjoint half-open ``(start, end)``."""
        doc = self._json("GET", "/v1/coverage", {"node_id": node, "interval": interval_of(node, interval)})
        try:
            return [(int(r["start"]), int(r["end"])) for r in doc["ranges"]]
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedResponse("coverage document lacks ranges", url=self.url + "/v1/coverage", cause=e) from e

    def series(self) -> List[SeriesInfo]:
        """Every stored series with its columns, bounds and fragment count."""
        doc = self._json("GET", "/v1/series")
        items = doc.get("series") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise MalformedResponse("series document lacks the series list", url=self.url + "/v1/series")
        return [SeriesInfo.from_dict(s, url=self.url + "/v1/series") for s in items]

    def backfill(
        self,
        node: str,
        interval: Optional[Any] = None,
        start: Any = None,
        end: Any = None,
        *,
        wait: bool = True,
        progress: Optional[Callable[[BackfillJob], None]] = None,
        poll_interval: float = 0.5,
        timeout: Optional[float] = None,
    ) -> BackfillJob:
        """Starts a background backfill of ``[start, end)`` and, with ``wait``, polls it
        until it ends, calling ``progress(job)`` whenever its state or counts change.

        A job that ends ``failed`` or ``cancelled`` raises the typed exception of its
        error (:class:`UpstreamFailed` for failed chunks) with ``.job`` set; ``timeout``
        seconds without the job ending raise :class:`Timeout` (the job goes on).
        """
        if start is None or end is None:
            raise _bad("start and end are required", "start" if start is None else "end")
        body = {
            "node_id": node,
            "interval": interval_of(node, interval),
            "start": to_epoch(start, "start"),
            "end": to_epoch(end, "end"),
        }
        accepted = self._json("POST", "/v1/backfill", body=body, expect=202)
        job_id = accepted.get("job_id") if isinstance(accepted, dict) else None
        if not isinstance(job_id, str):
            raise MalformedResponse("backfill answer lacks job_id", url=self.url + "/v1/backfill")
        job = self.backfill_job(job_id)
        if progress is not None:
            progress(job)
        if not wait:
            return job
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = _progress_key(job)
        while not job.done:
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"backfill job {job_id} still {job.state} after {timeout}s", url=self._url(f"/v1/backfill/{job_id}"))
            time.sleep(poll_interval)
            job = self.backfill_job(job_id)
            if progress is not None and _progress_key(job) != seen:
                seen = _progress_key(job)
                progress(job)
        if job.state != "succeeded":
            err = job.error or {"code": "backfill_failed", "message": f"backfill job {job_id} {job.state}"}
            cls = error_class(str(err.get("code")))
            if cls is ServerError:
                cls = BackfillFailed
            exc = cls(str(err.get("message", "")), code=str(err.get("code")), details=err, url=self._url(f"/v1/backfill/{job_id}"))
            exc.job = job  # type: ignore[attr-defined]
            raise exc
        return job

    def backfill_job(self, job_id: str) -> BackfillJob:
        """The state of a backfill job (:class:`NotFound` an hour after it ended)."""
        path = "/v1/backfill/" + urllib.parse.quote(job_id, safe="")
        return BackfillJob.from_dict(self._json("GET", path), url=self._url(path))

    def reports(self, node: str, interval: Optional[Any] = None, limit: Optional[int] = None) -> List[ReportRecord]:
        """Archived conformance reports of a series, newest first, with regression
        digests."""
        q: Dict[str, Any] = {"node_id": node, "interval": interval_of(node, interval)}
        if limit is not None:
            q["limit"] = int(limit)
        doc = self._json("GET", "/v1/reports", q)
        items = doc.get("reports") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise MalformedResponse("reports document lacks the reports list", url=self.url + "/v1/reports")
        return [ReportRecord.from_dict(r, url=self.url + "/v1/reports") for r in items]

    def subscribe(
        self,
        node: str,
        interval: Optional[Any] = None,
        start: Any = None,
        *,
        cursor: Optional[str] = None,
        forming: bool = False,
        strategy: Optional[str] = None,
        partial_ok: bool = False,
        sla: Optional[str] = None,
        on_violation: Optional[str] = None,
        min_coverage: Optional[float] = None,
        max_lag_seconds: Optional[float] = None,
        conformance: Optional[str] = None,
        heartbeat_timeout: float = 45.0,
        backoff: Tuple[float, float] = (0.1, 10.0),
        max_reconnects: Optional[int] = None,
        on_reconnect: Optional[Callable[[Optional[str], BaseException], None]] = None,
        **budgets: int,
    ) -> Subscription:
        """A subscription to ``node`` over Server-Sent Events (docs/api.md, Streaming):
        an iterator of :class:`~seamless.stream.Event` — the closed bars from ``start``
        (omit it for live only), one ``caught_up``, then each bar as it closes.

        ``cursor`` (an event's ``.cursor``) resumes after that event and wins over
        ``start``. Broken connections, silence past ``heartbeat_timeout`` seconds and
        server ends for ``slow_consumer`` or ``shutdown`` reconnect from the last cursor
        with exponential ``backoff`` (first, cap; seconds), at most ``max_reconnects``
        times (None: without limit); each bar is seen exactly once. An ``error`` event
        raises its typed exception (with ``.cursor``); a refused request raises before
        the first event. The other keywords are those of :meth:`fetch`, applied to every
        history page and repair.

            >>> for ev in client.subscribe("ohlcv:demo:BTC-USD:1m", start=time.time() - 3600):
            ...     if ev.type == "bars":
            ...         print(ev.frame.close.iloc[-1])
        """
        unknown = set(budgets) - set(_SLA_FIELDS)
        if unknown:
            raise TypeError(f"subscribe() got unexpected keyword arguments {sorted(unknown)}")
        if strategy is not None and strategy not in _STRATEGIES:
            raise _bad(f"unknown strategy {strategy!r} (want {', '.join(_STRATEGIES)})", "strategy")
        if heartbeat_timeout <= 15:
            raise ValueError(f"heartbeat_timeout {heartbeat_timeout}: want more than the server's 15 s heartbeat period")
        if not (0 < backoff[0] <= backoff[1]):
            raise ValueError(f"backoff {backoff!r}: want (first, cap) with 0 < first <= cap")
        q: Dict[str, Any] = {"node_id": node, "interval": interval_of(node, interval), "format": "json"}
        if start is not None:
            q["start"] = to_epoch(start, "start")
        if forming:
            q["forming"] = "true"
        if strategy:
            q["strategy"] = strategy
        if partial_ok:
            q["partial_ok"] = "true"
        for name, value in (
            ("sla", sla),
            ("on_violation", on_violation),
            ("min_coverage", min_coverage),
            ("max_lag_seconds", max_lag_seconds),
            ("conformance", conformance),
        ):
            if value is not None:
                q[name] = value
        for name, value in budgets.items():
            q[name] = int(value)
        return Subscription(
            self,
            q,
            cursor=cursor,
            heartbeat_timeout=heartbeat_timeout,
            backoff=backoff,
            max_reconnects=max_reconnects,
            on_reconnect=on_reconnect,
        )

    # --- transport ------------------------------------------------------------------

    def _url(self, path: str, query: Optional[Dict[str, Any]] = None) -> str:
        u = self.url + path
        if query:
            u += "?" + urllib.parse.urlencode(query)
        return u

    def _json(self, method: str, path: str, query: Optional[Dict[str, Any]] = None, *, body: Any = None, expect: int = 200) -> Any:
        _, _, raw, url = self._request(method, path, query, body=body, expect=expect)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise MalformedResponse("answer is not JSON (truncated, or not from a Seamless server)", url=url, cause=e) from e

    def _request(
        self, method: str, path: str, query: Optional[Dict[str, Any]] = None, *, body: Any = None, expect: int = 200
    ) -> Tuple[int, Any, bytes, str]:
        if self._check and not self._checked and path.startswith("/v1/"):
            self.health()
        url = self._url(path, query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "*/*", "User-Agent": "seamless-python/0.1"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        attempt = 0
        while True:
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    status, hdrs, raw = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as e:
                status, hdrs = e.code, e.headers
                try:
                    raw = e.read()
                except (OSError, http.client.HTTPException):
                    raw = b""
                finally:
                    e.close()
            except urllib.error.URLError as e:
                reason = e.reason
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    raise Timeout(f"no answer within {self.timeout}s", url=url, cause=reason) from e
                raise ConnectionFailed("cannot reach the server", url=url, cause=reason if isinstance(reason, BaseException) else e) from e
            except (socket.timeout, TimeoutError) as e:
                raise Timeout(f"answer not complete within {self.timeout}s", url=url, cause=e) from e
            except (http.client.HTTPException, ConnectionError, OSError) as e:
                raise ConnectionFailed("connection broke before the answer was complete", url=url, cause=e) from e
            if status == expect:
                return status, hdrs, raw, url
            err = _server_error(status, hdrs, raw, url)
            if status in (429, 503) and err.retry_after is not None and attempt < self.retries:
                attempt += 1
                time.sleep(min(err.retry_after, self.max_retry_wait))
                continue
            raise err


def _server_error(status: int, headers: Any, raw: bytes, url: str) -> ServerError:
    retry_after = _retry_after(headers.get("Retry-After") if headers is not None else None)
    body: Any = None
    try:
        body = json.loads(raw)
    except ValueError:
        pass
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        # Not an error document (a proxy's page): typed by status, as the Go client does.
        code = code_of_status(status)
        snippet = raw[:200].decode("utf-8", "replace").strip()
        return error_class(code)(
            f"HTTP {status} without an error document" + (f": {snippet!r}" if snippet else ""),
            code=code,
            status=status,
            url=url,
            retry_after=retry_after,
        )
    code = err["code"]
    return error_class(code)(str(err.get("message", "")), code=code, status=status, details=err, url=url, retry_after=retry_after)


def _retry_after(v: Optional[str]) -> Optional[float]:
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None  # an HTTP date: not sent by Seamless; no automatic retry


def _progress_key(job: BackfillJob) -> Tuple[Any, ...]:
    return (job.state, job.chunks_done, job.chunks_total, job.bars, len(job.failed_chunks))


def _bad(message: str, field: str) -> SeamlessError:
    from .errors import BadRequest

    return BadRequest(message, details={"field": field})
