"""Response metadata (SPEC §2) and the other documents of the API, as dataclasses.

Field names are the JSON names of the server, so ``Metadata`` reads like
``seamless fetch --format json`` prints. Ranges are half-open ``(start, end)`` tuples of
epoch seconds. Fields a newer server adds land in ``extra`` rather than being dropped or
breaking the parse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import MalformedResponse

__all__ = ["Metadata", "TierCounts", "BackfillInfo", "SeriesInfo", "BackfillJob", "ReportRecord", "Range"]

Range = Tuple[int, int]


def _range(v: Any) -> Optional[Range]:
    """A range from [a, b] or {"start": a, "end": b}; None stays None."""
    if v is None:
        return None
    if isinstance(v, dict):
        return (int(v["start"]), int(v["end"]))
    a, b = v
    return (int(a), int(b))


def _ranges(v: Any) -> List[Range]:
    return [_range(r) for r in v or []]  # type: ignore[misc]


@dataclass(frozen=True)
class TierCounts:
    """Bars served per tier."""

    cache: int = 0
    storage: int = 0
    backfill: int = 0
    live: int = 0


@dataclass(frozen=True)
class BackfillInfo:
    """What the request backfilled: chunks fetched or waited for, bars fetched upstream,
    chunks that failed and chunks scheduled for background backfill (partial_fill)."""

    chunks: int = 0
    waited: int = 0
    fetched_bars: int = 0
    failed: List[Range] = field(default_factory=list)
    scheduled: List[Range] = field(default_factory=list)


@dataclass(frozen=True)
class Metadata:
    """The metadata of a fetch (SPEC §2). Optional fields are None when the request did
    not produce them (``dataset_fingerprint`` without ``fingerprint=True``, …)."""

    node_id: str
    interval: int
    requested_range: Range
    rows: int
    coverage_bounds: Optional[Range]
    coverage_ratio: float
    strategy: Optional[str] = None
    staleness_ms: Optional[int] = None
    sources: TierCounts = TierCounts()
    backfill: BackfillInfo = BackfillInfo()
    conformance_flags: Dict[str, int] = field(default_factory=dict)
    conformance_warnings: List[str] = field(default_factory=list)
    conformance_version: Optional[str] = None
    dataset_fingerprint: Optional[str] = None
    schema_id: Optional[int] = None
    schema_version: Optional[int] = None
    manifest_uri: Optional[str] = None
    forming: bool = False
    downgraded: bool = False
    downgrade_mode: Optional[str] = None
    downgrade_reason: Optional[str] = None
    sla_violation: Optional[Dict[str, Any]] = None
    sla_phases: Dict[str, float] = field(default_factory=dict)
    world_id: Optional[str] = None
    execution_domain: Optional[str] = None
    requested_as_of: Optional[str] = None
    as_of: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, *, url: Optional[str] = None) -> "Metadata":
        """Parses the metadata object of a response; anything unreadable is a
        :class:`MalformedResponse` naming the field."""
        return _parse(d, url, _metadata)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object again (``extra`` merged back in)."""
        out = dataclasses.asdict(self)
        extra = out.pop("extra")
        out.update(extra)
        return out


def _metadata(d: Dict[str, Any]) -> Metadata:
    known = {f.name for f in dataclasses.fields(Metadata)} - {"extra"}
    bf = d.get("backfill") or {}
    src = d.get("sources") or {}
    return Metadata(
        node_id=str(d["node_id"]),
        interval=int(d["interval"]),
        requested_range=_range(d["requested_range"]),  # type: ignore[arg-type]
        rows=int(d["rows"]),
        coverage_bounds=_range(d.get("coverage_bounds")),
        coverage_ratio=float(d["coverage_ratio"]),
        strategy=d.get("strategy"),
        staleness_ms=d.get("staleness_ms"),
        sources=TierCounts(**{k: int(src.get(k, 0)) for k in ("cache", "storage", "backfill", "live")}),
        backfill=BackfillInfo(
            chunks=int(bf.get("chunks", 0)),
            waited=int(bf.get("waited", 0)),
            fetched_bars=int(bf.get("fetched_bars", 0)),
            failed=_ranges(bf.get("failed")),
            scheduled=_ranges(bf.get("scheduled")),
        ),
        conformance_flags=dict(d.get("conformance_flags") or {}),
        conformance_warnings=list(d.get("conformance_warnings") or []),
        conformance_version=d.get("conformance_version"),
        dataset_fingerprint=d.get("dataset_fingerprint"),
        schema_id=d.get("schema_id"),
        schema_version=d.get("schema_version"),
        manifest_uri=d.get("manifest_uri"),
        forming=bool(d.get("forming", False)),
        downgraded=bool(d.get("downgraded", False)),
        downgrade_mode=d.get("downgrade_mode"),
        downgrade_reason=d.get("downgrade_reason"),
        sla_violation=d.get("sla_violation"),
        sla_phases=dict(d.get("sla_phases") or {}),
        world_id=d.get("world_id"),
        execution_domain=d.get("execution_domain"),
        requested_as_of=d.get("requested_as_of"),
        as_of=d.get("as_of"),
        extra={k: v for k, v in d.items() if k not in known},
    )


@dataclass(frozen=True)
class SeriesInfo:
    """One stored series (``GET /v1/series``): its columns, covered bounds
    ``[first start, last end)`` and the number of disjoint covered ranges."""

    node_id: str
    interval: int
    columns: List[Tuple[str, str]]
    bounds: Optional[Range]
    fragments: int

    @classmethod
    def from_dict(cls, d: Any, *, url: Optional[str] = None) -> "SeriesInfo":
        return _parse(
            d,
            url,
            lambda d: SeriesInfo(
                node_id=str(d["node_id"]),
                interval=int(d["interval"]),
                columns=[(f["name"], f["dtype"]) for f in (d.get("schema") or {}).get("fields") or []],
                bounds=_range(d.get("bounds")),
                fragments=int(d.get("fragments", 0)),
            ),
        )


@dataclass(frozen=True)
class BackfillJob:
    """A background backfill job (``/v1/backfill/{job_id}``). States: queued → running →
    succeeded | failed | cancelled. ``chunks_total`` is known once the first chunk ends;
    ``error`` is the error object of a failed or cancelled job."""

    job_id: str
    state: str
    node_id: str
    interval: int
    start: int
    end: int
    chunks_done: int
    chunks_total: int
    bars: int
    failed_chunks: List[Range]
    error: Optional[Dict[str, Any]]
    created_at: Optional[str]
    started_at: Optional[str]
    finished_at: Optional[str]

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed", "cancelled")

    @classmethod
    def from_dict(cls, d: Any, *, url: Optional[str] = None) -> "BackfillJob":
        return _parse(
            d,
            url,
            lambda d: BackfillJob(
                job_id=str(d["job_id"]),
                state=str(d["state"]),
                node_id=str(d["node_id"]),
                interval=int(d["interval"]),
                start=int(d["start"]),
                end=int(d["end"]),
                chunks_done=int(d.get("chunks_done", 0)),
                chunks_total=int(d.get("chunks_total", 0)),
                bars=int(d.get("bars", 0)),
                failed_chunks=_ranges(d.get("failed_chunks")),
                error=d.get("error"),
                created_at=d.get("created_at"),
                started_at=d.get("started_at"),
                finished_at=d.get("finished_at"),
            ),
        )


@dataclass(frozen=True)
class ReportRecord:
    """An archived conformance report (``GET /v1/reports``): when, for which range, the
    report (``warnings``, ``flags_counts``, ``samples``) and its regression digest
    against the previous report of the series (``new_flags``, ``increased``)."""

    time: str
    node_id: str
    interval: int
    range: Range
    report: Dict[str, Any]
    digest: Dict[str, Any]

    @property
    def flags(self) -> Dict[str, int]:
        return dict(self.report.get("flags_counts") or {})

    @classmethod
    def from_dict(cls, d: Any, *, url: Optional[str] = None) -> "ReportRecord":
        return _parse(
            d,
            url,
            lambda d: ReportRecord(
                time=str(d["time"]),
                node_id=str(d["node_id"]),
                interval=int(d["interval"]),
                range=_range(d["range"]),  # type: ignore[arg-type]
                report=dict(d.get("report") or {}),
                digest=dict(d.get("digest") or {}),
            ),
        )


def _parse(d: Any, url: Optional[str], build: Callable[[Dict[str, Any]], Any]) -> Any:
    if not isinstance(d, dict):
        raise MalformedResponse(f"want a JSON object, got {type(d).__name__}", url=url)
    try:
        return build(d)
    except KeyError as e:
        raise MalformedResponse(f"document lacks the field {e.args[0]!r}", url=url, cause=e) from e
    except (TypeError, ValueError, AttributeError) as e:
        raise MalformedResponse(f"document has a field of the wrong type: {e}", url=url, cause=e) from e
