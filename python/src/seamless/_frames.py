"""Response bodies of ``/v1/bars`` → (columns, metadata) → a DataFrame or a dict.

Three wire formats, one result. Which one a fetch uses (``wire="auto"``):

=================  =====================================  ============================
installed          wire format                            decoded by
=================  =====================================  ============================
pyarrow            Arrow IPC stream (``format=arrow``)    ``pyarrow.ipc``
NumPy (pandas)     Arrow IPC stream (``format=arrow``)    ``seamless._arrow`` (NumPy)
standard library   columnar JSON (``format=json``)        ``json``
=================  =====================================  ============================

``wire="csv"`` (``pandas.read_csv``, or the ``csv`` module) is there for comparison and
for proxies that only pass text; docs/benchmarks.md has the bars/s of each path.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
from typing import Any, Dict, List, Optional, Tuple

from ._optional import numpy, pandas, pyarrow
from .errors import MalformedResponse

ARROW_METADATA_KEY = "seamless.metadata"
METADATA_HEADER = "X-Seamless-Metadata"
WIRES = ("auto", "arrow", "json", "csv")


def choose_wire(wire: str) -> str:
    if wire not in WIRES:
        raise ValueError(f"wire {wire!r}: want one of {', '.join(WIRES)}")
    arrow_ok = pyarrow() is not None or numpy() is not None
    if wire == "arrow" and not arrow_ok:
        raise ImportError("wire='arrow' needs pyarrow or NumPy (pandas brings it); use wire='json' or 'auto'")
    if wire != "auto":
        return wire
    return "arrow" if arrow_ok else "json"


Columns = Tuple[List[str], Dict[str, Any]]  # names in order, name → list or ndarray


def decode_json(body: bytes, url: str) -> Tuple[Columns, Dict[str, Any]]:
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise MalformedResponse("bars document is not JSON (truncated, or not from a Seamless server)", url=url, cause=e) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or not isinstance(doc.get("metadata"), dict):
        raise MalformedResponse("bars document lacks its metadata or data object", url=url)
    return decode_columns(doc["data"], url), doc["metadata"]


def decode_columns(data: Dict[str, Any], url: str) -> Columns:
    """The ``data`` object of a JSON bars document (or stream event) as columns."""
    if "ts" not in data:
        raise MalformedResponse("bars document has no ts column", url=url)
    names = list(data)
    np = numpy()
    cols: Dict[str, Any] = {}
    for name in names:
        values = data[name]
        if not isinstance(values, list):
            raise MalformedResponse(f"data.{name} is not a list", url=url)
        if name == "ts":
            cols[name] = np.asarray(values, dtype=np.int64) if np is not None else values
        elif values and isinstance(values[0], (str, bool)):
            cols[name] = np.asarray(values, dtype=object if isinstance(values[0], str) else bool) if np is not None else values
        elif np is not None:
            # JSON has no NaN: the server sends non-finite floats as null.
            cols[name] = np.asarray(values, dtype=np.float64) if None not in values else np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        else:
            cols[name] = [math.nan if v is None else v for v in values] if None in values else values
    return names, cols


def decode_csv(body: bytes, header: Optional[str], url: str) -> Tuple[Columns, Dict[str, Any]]:
    if header is None:
        raise MalformedResponse(f"CSV answer lacks the {METADATA_HEADER} header", url=url)
    try:
        meta = json.loads(header)
    except ValueError as e:
        raise MalformedResponse(f"{METADATA_HEADER} is not JSON", url=url, cause=e) from e
    pd = pandas()
    if pd is not None:
        try:
            df = pd.read_csv(io.BytesIO(body), dtype={"ts": "int64"}, engine="c", float_precision="round_trip")
        except (ValueError, pd.errors.ParserError) as e:
            raise MalformedResponse("CSV body does not parse", url=url, cause=e) from e
        names = list(df.columns)
        return (names, {n: df[n].to_numpy() for n in names}), meta
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    if not rows:
        raise MalformedResponse("CSV body has no header row", url=url)
    names = rows[0]
    cols: Dict[str, Any] = {n: [] for n in names}
    try:
        for row in rows[1:]:
            for n, v in zip(names, row):
                cols[n].append(int(v) if n == "ts" else _csv_value(v))
    except ValueError as e:
        raise MalformedResponse("CSV body has a malformed value", url=url, cause=e) from e
    return (names, cols), meta


def _csv_value(v: str) -> Any:
    if v in ("true", "false"):
        return v == "true"
    try:
        return float(v)
    except ValueError:
        return v


def decode_arrow(body: bytes, url: str) -> Tuple[Columns, Dict[str, Any]]:
    pa = pyarrow()
    if pa is not None:
        ipc = importlib.import_module("pyarrow.ipc")
        try:
            reader = ipc.open_stream(body)
            table = reader.read_all()
        except (pa.ArrowInvalid, OSError) as e:
            raise MalformedResponse("Arrow stream does not decode (truncated?)", url=url, cause=e) from e
        raw = (table.schema.metadata or {}).get(ARROW_METADATA_KEY.encode())
        if raw is None:
            raise MalformedResponse(f"Arrow schema metadata lacks {ARROW_METADATA_KEY!r}", url=url)
        names = table.column_names
        return (names, {n: table.column(n).to_numpy() for n in names}), _json(raw, url)
    from . import _arrow

    try:
        meta, names, cols = _arrow.read_stream(body)
        return (names, cols), _json(_arrow_meta(meta, url), url)
    except _arrow.ArrowFormatError as e:
        raise MalformedResponse(f"Arrow stream: {e}", url=url, cause=e) from e


def _arrow_meta(meta: Dict[str, str], url: str) -> str:
    if ARROW_METADATA_KEY not in meta:
        raise MalformedResponse(f"Arrow schema metadata lacks {ARROW_METADATA_KEY!r}", url=url)
    return meta[ARROW_METADATA_KEY]


def _json(raw: Any, url: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise MalformedResponse("embedded metadata is not JSON", url=url, cause=e) from e


def to_frame(columns: Columns) -> Any:
    """A pandas DataFrame indexed by a UTC DatetimeIndex named ``ts`` when pandas is
    installed; else the dict of column lists (``ts`` first, epoch seconds)."""
    names, cols = columns
    pd = pandas()
    if pd is None:
        return {n: list(cols[n]) if not isinstance(cols[n], list) else cols[n] for n in names}
    ts = cols["ts"]
    # datetime64[s] → the index's ns with pandas' own bounds check; tz_localize from
    # UTC is a relabelling, no arithmetic.
    index = pd.DatetimeIndex(numpy().asarray(ts, dtype="int64").astype("datetime64[s]"), name="ts").tz_localize("UTC")
    return pd.DataFrame({n: cols[n] for n in names if n != "ts"}, index=index)
