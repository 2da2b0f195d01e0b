"""Subscriptions over ``GET /v1/stream`` as Server-Sent Events, standard library only.

A :class:`Subscription` is an iterator of :class:`Event`: the closed bars of one series
from ``start`` (history, through the same plan as ``fetch``), one ``caught_up``, then
each bar as it closes (docs/api.md, Streaming). The connection is reopened from the last
cursor when it breaks, when the server goes quiet for longer than ``heartbeat_timeout``
(it sends a heartbeat every 15 s), or when the server ends it as a slow consumer or for
its shutdown; the application sees every bar exactly once across reconnects, and
``caught_up`` once. An ``error`` event raises its typed exception (the subscription then
ends); the server refusing the request (400, 401, 404, …) raises before any event.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import _frames
from .errors import ConnectionFailed, MalformedResponse, ServerError, Timeout, TooManyRequests, Unavailable, error_class
from .metadata import Metadata

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["Event", "Subscription", "EVENT_TYPES"]

EVENT_TYPES = ("bars", "caught_up", "gap", "forming", "heartbeat", "error", "end")

# End reasons after which the subscription resumes from its cursor on a new connection.
_RESUMABLE = ("slow_consumer", "shutdown")


@dataclass(frozen=True)
class Event:
    """One event of a subscription.

    ``frame`` (``bars`` and ``forming``) is a pandas DataFrame indexed by a UTC
    ``ts`` DatetimeIndex when pandas is installed, else a dict of column lists, as for
    :meth:`Client.fetch`. ``metadata`` is the page's bars metadata (history pages and
    repairs, with any SLA downgrade). ``cursor`` resumes after this event
    (``Client.subscribe(..., cursor=ev.cursor)``). ``raw`` is the event's JSON object
    without its ``data``.
    """

    type: str
    node_id: str
    interval: int
    cursor: Optional[str] = None
    origin: Optional[str] = None
    rows: int = 0
    frame: Any = None
    metadata: Optional[Metadata] = None
    next_ts: Optional[int] = None
    range: Optional[Tuple[int, int]] = None
    reason: Optional[str] = None
    error: Optional[Dict[str, Any]] = None
    time_ms: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.rows


class Subscription:
    """An iterator of :class:`Event` over one SSE connection at a time. Use it in a
    ``for`` loop or a ``with`` block; :meth:`close` ends it (and its connection)."""

    def __init__(
        self,
        client: "Client",
        query: Dict[str, Any],
        *,
        cursor: Optional[str],
        heartbeat_timeout: float,
        backoff: Tuple[float, float],
        max_reconnects: Optional[int],
        on_reconnect: Optional[Callable[[Optional[str], BaseException], None]],
    ):
        self._client = client
        self._query = query
        self.cursor = cursor
        self._heartbeat_timeout = heartbeat_timeout
        self._backoff = backoff
        self._max_reconnects = max_reconnects
        self._on_reconnect = on_reconnect
        self._caught_up = False
        self._closed = False
        self._resp: Any = None
        self._events = self._run()
        #: How many times the subscription reconnected.
        self.reconnects = 0

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Ends the subscription: closes its connection; iteration stops."""
        self._closed = True
        self._drop()
        self._events.close()

    @property
    def url(self) -> str:
        return self._client._url("/v1/stream", self._query)

    # --- the connection loop ----------------------------------------------------------

    def _run(self) -> Iterator[Event]:
        delay = self._backoff[0]
        while not self._closed:
            delivered = False
            cause: BaseException
            try:
                for ev in self._connection():
                    delivered = True
                    if ev is None:  # a resumable end: reconnect from the cursor
                        break
                    yield ev
                    if ev.type == "end":
                        self._closed = True
                        return
                cause = ConnectionFailed("the server closed the stream without an end event", url=self.url)
            except _Broken as b:
                cause = b.cause
            finally:
                self._drop()
            if self._closed:
                return
            if delivered:
                delay = self._backoff[0]
            if self._max_reconnects is not None and self.reconnects >= self._max_reconnects:
                raise cause
            self.reconnects += 1
            if self._on_reconnect is not None:
                self._on_reconnect(self.cursor, cause)
            # Full jitter on the second half, so a fleet of clients does not reconnect in step.
            time.sleep(_retry_wait(cause, delay) * (0.5 + random.random() / 2))
            delay = min(delay * 2, self._backoff[1])

    def _connection(self) -> Iterator[Optional[Event]]:
        """The events of one connection; None for a resumable end. Transport failures
        raise _Broken; refusals (4xx but 429) raise their typed exception."""
        c = self._client
        if c._check and not c._checked:
            c.health()
        query = dict(self._query)
        headers = {"Accept": "text/event-stream", "User-Agent": "seamless-python/0.1", "Cache-Control": "no-cache"}
        if self.cursor:
            query["cursor"] = self.cursor
            headers["Last-Event-ID"] = self.cursor
        if c.token:
            headers["Authorization"] = "Bearer " + c.token
        url = c._url("/v1/stream", query)
        req = urllib.request.Request(url, method="GET", headers=headers)
        try:
            # The socket timeout bounds the connect and every read: the server sends
            # something at least every 15 s, so silence past heartbeat_timeout is a
            # dead connection.
            self._resp = c._opener.open(req, timeout=self._heartbeat_timeout)
        except urllib.error.HTTPError as e:
            from .client import _server_error

            try:
                raw = e.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                e.close()
            err = _server_error(e.code, e.headers, raw, url)
            if isinstance(err, (TooManyRequests, Unavailable)) or e.code >= 500:
                raise _Broken(err) from None
            raise err from None
        except urllib.error.URLError as e:
            reason = e.reason if isinstance(e.reason, BaseException) else e
            raise _Broken(ConnectionFailed("cannot reach the server", url=url, cause=reason)) from None
        except (socket.timeout, TimeoutError, http.client.HTTPException, OSError) as e:
            raise _Broken(ConnectionFailed("cannot open the stream", url=url, cause=e)) from None
        resp = self._resp
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            raise MalformedResponse(f"stream answer has Content-Type {ctype!r}, not text/event-stream", url=url)
        for typ, data in _sse_events(resp, url, self._heartbeat_timeout):
            if self._closed:
                return
            ev = _event(typ, data, url)
            if ev.type == "heartbeat":
                yield ev
                continue
            if ev.type in ("bars", "caught_up", "end") and ev.cursor:
                self.cursor = ev.cursor
            if ev.type == "caught_up":
                if self._caught_up:
                    continue  # a resumed subscription catching up again: said once
                self._caught_up = True
            elif ev.type == "end" and ev.reason in _RESUMABLE:
                yield None
                return
            elif ev.type == "error":
                err = ev.error or {}
                code = str(err.get("code", "internal"))
                exc = error_class(code)(str(err.get("message", "")), code=code, details=err, url=url)
                exc.cursor = self.cursor  # type: ignore[attr-defined]
                exc.event = ev  # type: ignore[attr-defined]
                self._closed = True
                raise exc
            yield ev

    def _drop(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            try:
                resp.close()
            except (OSError, http.client.HTTPException):
                pass


class _Broken(Exception):
    """A connection that ended in a way reconnecting can mend."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _retry_wait(cause: BaseException, delay: float) -> float:
    if isinstance(cause, ServerError) and cause.retry_after is not None:
        return max(delay, cause.retry_after)
    return delay


# One SSE line is one JSON event; a history page of 65,536 bars is about 7 MiB.
_MAX_LINE = 64 << 20


def _sse_events(resp: Any, url: str, heartbeat_timeout: float) -> Iterator[Tuple[str, str]]:
    """(event type, data) of each SSE event (the WHATWG event-stream format: fields
    ``event``, ``data`` (joined by newlines), ``id``; ``:`` comments ignored)."""
    typ, data = "", []  # type: Tuple[str, List[str]]
    while True:
        try:
            line = resp.readline(_MAX_LINE + 1)
        except (socket.timeout, TimeoutError) as e:
            raise _Broken(Timeout(f"nothing from the server for {heartbeat_timeout}s (heartbeats are every 15 s)", url=url, cause=e)) from None
        except (http.client.HTTPException, OSError, ValueError) as e:
            raise _Broken(ConnectionFailed("the stream broke", url=url, cause=e)) from None
        if not line:
            return  # EOF
        if len(line) > _MAX_LINE:
            raise MalformedResponse(f"stream line over {_MAX_LINE} bytes", url=url)
        if not line.endswith(b"\n"):
            raise _Broken(ConnectionFailed("the stream broke mid-event", url=url))
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text == "":
            if data:
                yield typ or "message", "\n".join(data)
            typ, data = "", []
            continue
        if text.startswith(":"):
            continue
        name, _, value = text.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            typ = value
        elif name == "data":
            data.append(value)
        # "id" is also in the JSON event as its cursor; "retry" is ignored (own backoff).


def _event(typ: str, data: str, url: str) -> Event:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise MalformedResponse(f"{typ} event is not JSON", url=url, cause=e) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise MalformedResponse(f"{typ} event lacks its type", url=url)
    kind = doc["type"]
    if kind not in EVENT_TYPES:
        raise MalformedResponse(f"unknown event type {kind!r}", url=url)
    frame = None
    rows = int(doc.get("rows") or 0)
    if kind in ("bars", "forming") and isinstance(doc.get("data"), dict):
        names, cols = _frames.decode_columns(doc["data"], url)
        frame = _frames.to_frame((names, cols))
        n = len(cols["ts"])
        if kind == "bars" and n != rows:
            raise MalformedResponse(f"bars event has {n} bars, says {rows}", url=url)
        rows = n
    meta = doc.get("metadata")
    rng = doc.get("range")
    raw = {k: v for k, v in doc.items() if k != "data"}
    try:
        return Event(
            type=kind,
            node_id=str(doc.get("node_id", "")),
            interval=int(doc.get("interval") or 0),
            cursor=doc.get("cursor"),
            origin=doc.get("origin"),
            rows=rows,
            frame=frame,
            metadata=Metadata.from_dict(meta, url=url) if isinstance(meta, dict) else None,
            next_ts=int(doc["next_ts"]) if doc.get("next_ts") is not None else None,
            range=(int(rng["start"]), int(rng["end"])) if isinstance(rng, dict) else None,
            reason=doc.get("reason"),
            error=doc.get("error") if isinstance(doc.get("error"), dict) else None,
            time_ms=int(doc["time_ms"]) if doc.get("time_ms") is not None else None,
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedResponse(f"{kind} event has a malformed field", url=url, cause=e) from e
