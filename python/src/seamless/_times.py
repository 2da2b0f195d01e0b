"""Times in, epoch seconds out: the one conversion every method uses.

Accepted: ``datetime`` (naive means UTC), ``date`` (midnight UTC), pandas ``Timestamp``,
NumPy ``datetime64``, ISO 8601 / RFC 3339 strings (``"2024-01-01"``,
``"2024-01-01T00:00:00Z"``, with offsets), decimal strings and numbers of epoch seconds.

Fractions of a second round *up*: the server's ranges are half-open on whole seconds,
and for an integer grid point t, ``t >= 99.5`` is ``t >= 100`` and ``t < 100.5`` is
``t < 101`` — rounding up keeps exactly the bars the caller's bounds contain.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any, Optional

from .errors import BadRequest

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_DECIMAL = re.compile(r"^[+-]?\d+(\.\d+)?$")
_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def to_epoch(value: Any, name: str = "time") -> int:
    """Epoch seconds of ``value``; anything else is a :class:`BadRequest` naming ``name``."""
    if isinstance(value, bool) or value is None:
        raise _bad(name, value, "want a datetime, an ISO 8601 string or epoch seconds")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(name, value, "not a finite number")
        return math.ceil(value)
    if isinstance(value, _dt.datetime):  # pandas.Timestamp is one too
        ns = getattr(value, "value", None)
        if isinstance(ns, int) and type(value).__name__ == "Timestamp":
            # Timestamp.value is UTC nanoseconds for naive and aware values alike.
            return -((-ns) // 1_000_000_000)
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _EPOCH
        secs = delta.days * 86400 + delta.seconds
        return secs + (1 if delta.microseconds else 0)
    if isinstance(value, _dt.date):
        return to_epoch(_dt.datetime(value.year, value.month, value.day), name)
    if isinstance(value, str):
        return _parse_str(value.strip(), name)
    kind = type(value).__module__.split(".")[0]
    if kind == "numpy":
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype.kind == "M":  # datetime64
            ns = int(value.astype("datetime64[ns]").astype("int64"))
            return -((-ns) // 1_000_000_000)
        if dtype is not None and dtype.kind in "iu":
            return int(value)
        if dtype is not None and dtype.kind == "f":
            return to_epoch(float(value), name)
    raise _bad(name, value, "want a datetime, an ISO 8601 string or epoch seconds")


def _parse_str(s: str, name: str) -> int:
    if _DECIMAL.match(s):
        return to_epoch(float(s), name) if "." in s else int(s)
    text = s
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 fromisoformat wants exactly 0, 3 or 6 fraction digits.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if m:
        text = f"{m.group(1)}.{(m.group(2) + '000000')[:6]}{m.group(3)}"
        extra = m.group(2)[6:].strip("0")
    else:
        extra = ""
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise _bad(name, s, "not an ISO 8601 / RFC 3339 time or epoch seconds") from e
    secs = to_epoch(parsed, name)
    if extra and not parsed.microsecond:
        secs += 1  # a fraction below a microsecond still rounds up
    return secs


def interval_of(node_id: str, interval: Optional[Any]) -> int:
    """The bar interval in seconds: ``interval`` if given (an int, or a timedelta), else
    the node id's timeframe suffix (``1m`` → 60). Calendar timeframes (``1M``) and
    unknown ones need an explicit interval."""
    if interval is not None:
        if isinstance(interval, _dt.timedelta):
            secs = interval.total_seconds()
            if secs != int(secs):
                raise BadRequest(f"interval {interval} is not a whole number of seconds", details={"field": "interval"})
            return int(secs)
        if isinstance(interval, bool) or not isinstance(interval, int):
            try:
                as_int = int(interval)
            except (TypeError, ValueError):
                raise BadRequest(f"interval {interval!r} is not a number of seconds", details={"field": "interval"}) from None
            if as_int != interval:
                raise BadRequest(f"interval {interval!r} is not a whole number of seconds", details={"field": "interval"})
            return as_int
        return interval
    m = _TIMEFRAME.match(node_id.rsplit(":", 1)[-1])
    if not m:
        raise BadRequest(
            f"node id {node_id!r} has no timeframe suffix this client knows (1m, 5m, 1h, 1d, …): pass interval",
            details={"field": "interval"},
        )
    return int(m.group(1)) * _UNIT[m.group(2)]


def _bad(name: str, value: Any, why: str) -> BadRequest:
    return BadRequest(f"{name}: {value!r}: {why}", details={"field": name, "reason": why})
