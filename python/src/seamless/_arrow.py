"""An Arrow IPC stream reader in NumPy, for clients without pyarrow.

Seamless answers ``format=arrow`` with an Arrow IPC *stream*: a Schema message whose
custom metadata holds the response metadata (key ``seamless.metadata``), record batches
of up to 65,536 rows, and an end-of-stream marker. Each column's values arrive in their
in-memory layout, so decoding is ``numpy.frombuffer`` on slices of the body — no text
parsing, which is what makes it the fastest path without pyarrow (docs/benchmarks.md).

Only what the server sends is read: uncompressed batches of fixed-width columns (int and
float of any width, bool, timestamp) and UTF-8 strings, with or without validity bitmaps
(nulls become NaN; an integer column with nulls becomes float64). Anything else — a
dictionary batch, body compression, nested types — is an :class:`ArrowFormatError`, not a
wrong answer.

The metadata of each message is a FlatBuffer (format/Message.fbs, format/Schema.fbs of
the Arrow project); ``_Table`` reads the few tables involved by field index.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["ArrowFormatError", "read_stream"]

# Message header union (Message.fbs).
_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3
# Type union (Schema.fbs).
_INT, _FLOAT, _UTF8, _BOOL, _TIMESTAMP, _LARGE_UTF8 = 2, 3, 5, 6, 10, 20

_CONTINUATION = 0xFFFFFFFF


class ArrowFormatError(ValueError):
    """The bytes are not an Arrow IPC stream this reader understands."""


class _Table:
    """A FlatBuffers table: fields looked up by index through its vtable."""

    __slots__ = ("buf", "pos", "vt", "vtlen")

    def __init__(self, buf: memoryview, pos: int):
        self.buf = buf
        self.pos = pos
        self.vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtlen = struct.unpack_from("<H", buf, self.vt)[0]

    def _field(self, i: int) -> int:
        o = 4 + 2 * i
        if o >= self.vtlen:
            return 0
        return struct.unpack_from("<H", self.buf, self.vt + o)[0]

    def scalar(self, i: int, fmt: str, default: Any) -> Any:
        o = self._field(i)
        return struct.unpack_from(fmt, self.buf, self.pos + o)[0] if o else default

    def table(self, i: int) -> Optional["_Table"]:
        o = self._field(i)
        if not o:
            return None
        p = self.pos + o
        return _Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0])

    def vector(self, i: int) -> Tuple[int, int]:
        """(position of the first element, length); (0, 0) when absent."""
        o = self._field(i)
        if not o:
            return 0, 0
        p = self.pos + o
        p += struct.unpack_from("<I", self.buf, p)[0]
        return p + 4, struct.unpack_from("<I", self.buf, p)[0]

    def tables(self, i: int) -> List["_Table"]:
        start, n = self.vector(i)
        out = []
        for k in range(n):
            p = start + 4 * k
            out.append(_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]))
        return out

    def string(self, i: int) -> Optional[str]:
        start, n = self.vector(i)
        if not start:
            return None
        return bytes(self.buf[start : start + n]).decode("utf-8")


class _Field:
    __slots__ = ("name", "kind", "dtype")

    def __init__(self, name: str, kind: int, dtype: Optional[np.dtype]):
        self.name, self.kind, self.dtype = name, kind, dtype


def _field_of(t: _Table) -> _Field:
    name = t.string(0) or ""
    kind = t.scalar(2, "<B", 0)
    typ = t.table(3)
    if t.vector(5)[1]:
        raise ArrowFormatError(f"column {name!r}: nested types are not supported")
    if t.table(4) is not None:
        raise ArrowFormatError(f"column {name!r}: dictionary-encoded columns are not supported")
    if kind == _INT and typ is not None:
        width = typ.scalar(0, "<i", 0)
        signed = typ.scalar(1, "<?", False)
        if width not in (8, 16, 32, 64):
            raise ArrowFormatError(f"column {name!r}: int of {width} bits")
        return _Field(name, kind, np.dtype(f"<{'i' if signed else 'u'}{width // 8}"))
    if kind == _FLOAT and typ is not None:
        precision = typ.scalar(0, "<h", 0)
        return _Field(name, kind, np.dtype(["<f2", "<f4", "<f8"][precision]))
    if kind == _TIMESTAMP:
        return _Field(name, kind, np.dtype("<i8"))
    if kind in (_BOOL, _UTF8, _LARGE_UTF8):
        return _Field(name, kind, None)
    raise ArrowFormatError(f"column {name!r}: Arrow type id {kind} is not supported")


def _messages(buf: memoryview):
    """Yields (message table, body) until the end-of-stream marker."""
    pos, n = 0, len(buf)
    while True:
        if pos + 4 > n:
            raise ArrowFormatError("stream ends without its end-of-stream marker (truncated)")
        size = struct.unpack_from("<I", buf, pos)[0]
        pos += 4
        if size == _CONTINUATION:
            if pos + 4 > n:
                raise ArrowFormatError("stream ends inside a message header (truncated)")
            size = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        if size == 0:
            return
        if pos + size > n:
            raise ArrowFormatError("stream ends inside a message (truncated)")
        meta = buf[pos : pos + size]
        pos += size
        msg = _Table(meta, struct.unpack_from("<I", meta, 0)[0])
        body_len = msg.scalar(3, "<q", 0)
        if pos + body_len > n:
            raise ArrowFormatError("stream ends inside a record batch body (truncated)")
        yield msg, buf[pos : pos + body_len]
        pos += body_len


def _validity(body: memoryview, off: int, length: int, rows: int) -> np.ndarray:
    bits = np.frombuffer(body, dtype=np.uint8, count=length, offset=off)
    return np.unpackbits(bits, bitorder="little")[:rows].astype(bool)


def read_stream(data: bytes) -> Tuple[Dict[str, str], List[str], Dict[str, np.ndarray]]:
    """Decodes an Arrow IPC stream: (schema metadata, column names in order, columns).

    Columns are NumPy arrays (strings: object arrays). Raises :class:`ArrowFormatError`
    for anything malformed or outside what the reader supports.
    """
    buf = memoryview(data)
    try:
        return _read(buf)
    except (struct.error, IndexError, ValueError) as e:
        if isinstance(e, ArrowFormatError):
            raise
        raise ArrowFormatError(f"malformed Arrow IPC stream: {e}") from e


def _read(buf: memoryview):
    fields: Optional[List[_Field]] = None
    meta: Dict[str, str] = {}
    chunks: List[List[np.ndarray]] = []
    for msg, body in _messages(buf):
        kind = msg.scalar(1, "<B", 0)
        header = msg.table(2)
        if header is None:
            raise ArrowFormatError("message without a header")
        if kind == _SCHEMA:
            fields = [_field_of(f) for f in header.tables(1)]
            meta = {kv.string(0) or "": kv.string(1) or "" for kv in header.tables(2)}
            chunks = [[] for _ in fields]
        elif kind == _RECORD_BATCH:
            if fields is None:
                raise ArrowFormatError("record batch before the schema")
            _batch(header, body, fields, chunks)
        elif kind == _DICTIONARY_BATCH:
            raise ArrowFormatError("dictionary batches are not supported")
        else:
            raise ArrowFormatError(f"unexpected message type {kind}")
    if fields is None:
        raise ArrowFormatError("stream has no schema")
    cols: Dict[str, np.ndarray] = {}
    for f, parts in zip(fields, chunks):
        if not parts:
            cols[f.name] = np.empty(0, dtype=f.dtype if f.dtype is not None else (bool if f.kind == _BOOL else object))
        elif len(parts) == 1:
            cols[f.name] = parts[0]
        else:
            cols[f.name] = np.concatenate(parts)
    return meta, [f.name for f in fields], cols


def _batch(rb: _Table, body: memoryview, fields: List[_Field], chunks: List[List[np.ndarray]]) -> None:
    if rb.table(3) is not None:
        raise ArrowFormatError("compressed record batches are not supported")
    rows = rb.scalar(0, "<q", 0)
    nodes_at, n_nodes = rb.vector(1)
    bufs_at, n_bufs = rb.vector(2)
    if n_nodes != len(fields):
        raise ArrowFormatError(f"record batch has {n_nodes} columns, the schema {len(fields)}")
    raw = rb.buf

    def buffer(k: int) -> Tuple[int, int]:
        if k >= n_bufs:
            raise ArrowFormatError("record batch has fewer buffers than its columns need")
        return struct.unpack_from("<qq", raw, bufs_at + 16 * k)

    b = 0
    for i, f in enumerate(fields):
        length, nulls = struct.unpack_from("<qq", raw, nodes_at + 16 * i)
        if length != rows:
            raise ArrowFormatError(f"column {f.name!r} has {length} rows, the batch {rows}")
        v_off, v_len = buffer(b)
        valid = _validity(body, v_off, v_len, rows) if nulls else None
        if f.kind in (_UTF8, _LARGE_UTF8):
            o_off, _ = buffer(b + 1)
            d_off, d_len = buffer(b + 2)
            b += 3
            odt = "<i4" if f.kind == _UTF8 else "<i8"
            offsets = np.frombuffer(body, dtype=odt, count=rows + 1, offset=o_off)
            text = bytes(body[d_off : d_off + d_len])
            col = np.array([text[offsets[k] : offsets[k + 1]].decode("utf-8") for k in range(rows)], dtype=object)
            if valid is not None:
                col[~valid] = None
        elif f.kind == _BOOL:
            d_off, d_len = buffer(b + 1)
            b += 2
            col = _validity(body, d_off, d_len, rows)
            if valid is not None:
                col = col.astype(object)
                col[~valid] = None
        else:
            d_off, _ = buffer(b + 1)
            b += 2
            col = np.frombuffer(body, dtype=f.dtype, count=rows, offset=d_off)
            if valid is not None:
                col = col.astype(np.float64)  # NaN marks a null, also in an int column
                col[~valid] = np.nan
        chunks[i].append(col)


def metadata_json(meta: Dict[str, str], key: str) -> Any:
    """The JSON document under ``key`` of the schema metadata."""
    if key not in meta:
        raise ArrowFormatError(f"schema metadata lacks {key!r}")
    return json.loads(meta[key])
