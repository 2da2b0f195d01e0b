"""Every Client method against a live `seamless serve` (embedded store, demo source)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

import seamless
from conftest import have_pandas

DAY = 86400
T0 = 1704067200  # 2024-01-01T00:00:00Z


def columns(frame):
    """The frame as {column: list}, ts as epoch seconds, whichever type it is."""
    if isinstance(frame, dict):
        return frame
    out = {"ts": [int(t.timestamp()) for t in frame.index]}
    for c in frame.columns:
        out[c] = frame[c].tolist()
    return out


def test_health_reports_a_compatible_api_version(client):
    h = client.health()
    assert h["status"] == "ok"
    assert h["api_version"].split(".")[0] == seamless.API_MAJOR


def test_fetch_returns_bars_and_metadata(client):
    res = client.fetch("ohlcv:demo:FETCH-USD:1m", 60, "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z")
    md = res.metadata
    assert isinstance(md, seamless.Metadata)
    assert (md.node_id, md.interval, md.rows, md.requested_range) == ("ohlcv:demo:FETCH-USD:1m", 60, 60, (T0, T0 + 3600))
    assert md.coverage_ratio == 1.0 and md.coverage_bounds == (T0, T0 + 3600)
    assert md.sources.backfill == 60 and md.backfill.chunks >= 1 and md.conformance_version == "v2"
    assert md.downgraded is False and md.sla_violation is None
    cols = columns(res.frame)
    assert cols["ts"] == list(range(T0, T0 + 3600, 60))
    assert list(cols) == ["ts", "open", "high", "low", "close", "volume"]
    assert all(h >= max(o, c) for o, h, c in zip(cols["open"], cols["high"], cols["close"]))
    assert len(res) == 60


@pytest.mark.skipif(not have_pandas(), reason="the DataFrame shape needs pandas; the dict shape is tested without it")
def test_fetch_frame_is_a_dataframe_with_a_utc_index(client):
    import pandas as pd

    res = client.fetch("ohlcv:demo:FETCH-USD:1m", 60, T0, T0 + 600)
    df = res.frame
    assert isinstance(df, pd.DataFrame)
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC" and df.index.name == "ts"
    assert df.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert all(str(t) == "float64" for t in df.dtypes)


def test_frame_without_pandas_is_a_dict_of_lists(client):
    res = client.fetch("ohlcv:demo:FETCH-USD:1m", 60, T0, T0 + 600)
    if have_pandas():
        assert not isinstance(res.frame, dict)
        assert res.wire == "arrow"
    else:
        assert isinstance(res.frame, dict) and isinstance(res.frame["ts"], list)
        assert res.wire == "json"
        assert res.frame["ts"][0] == T0 and isinstance(res.frame["close"][0], float)


@pytest.mark.parametrize("wire", ["json", "csv", "arrow"])
def test_every_wire_format_gives_the_same_bars(client, wire):
    if wire == "arrow" and not have_pandas():
        with pytest.raises(ImportError):
            client.fetch("ohlcv:demo:WIRE-USD:5m", 300, T0, T0 + DAY, wire=wire)
        return
    want = client.fetch("ohlcv:demo:WIRE-USD:5m", 300, T0, T0 + DAY, wire="json")
    got = client.fetch("ohlcv:demo:WIRE-USD:5m", 300, T0, T0 + DAY, wire=wire)
    assert got.wire == wire
    assert columns(got.frame) == columns(want.frame)
    assert got.metadata.rows == want.metadata.rows == 288


def test_times_in_every_accepted_form(client):
    node = "ohlcv:demo:TIME-USD:1h"
    forms = [
        (T0, T0 + DAY),
        (float(T0), float(T0 + DAY)),
        ("2024-01-01", "2024-01-02"),
        ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00+00:00"),
        ("2024-01-01T09:00:00+09:00", str(T0 + DAY)),
        (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)),
        (dt.date(2024, 1, 1), dt.date(2024, 1, 2)),
    ]
    if have_pandas():
        import numpy as np
        import pandas as pd

        forms.append((pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02")))
        forms.append((np.datetime64("2024-01-01T00:00:00"), np.int64(T0 + DAY)))
    for start, end in forms:
        md = client.fetch(node, None, start, end).metadata
        assert md.requested_range == (T0, T0 + DAY), (start, end)
        assert md.interval == 3600 and md.rows == 24
    # A fraction of a second rounds up: [T0+0.5, T0+3600.5) holds the bar at T0+3600 only.
    md = client.fetch(node, 3600, T0 + 0.5, T0 + 3600.5).metadata
    assert md.requested_range == (T0 + 1, T0 + 3601) and md.rows == 1


def test_bad_times_are_bad_requests_before_any_request(client):
    with pytest.raises(seamless.BadRequest) as e:
        client.fetch("ohlcv:demo:TIME-USD:1h", 3600, "yesterday", T0)
    assert e.value.field == "start" and e.value.status is None
    with pytest.raises(seamless.BadRequest):
        client.fetch("ohlcv:demo:TIME-USD:1h", 3600, T0, math.nan)
    with pytest.raises(seamless.BadRequest):
        client.fetch("ohlcv:demo:TIME-USD:1M", None, T0, T0 + DAY)  # calendar months: pass an interval


def test_fetch_options_reach_the_server(client):
    node = "ohlcv:demo:OPTS-USD:1m"
    client.fetch(node, 60, T0, T0 + 3600)  # backfills the aligned chunk around it
    (a, b), = client.coverage(node)
    end = T0 + 3 * DAY
    covered = (min(b, end) - T0) // 60
    res = client.fetch(node, 60, T0, end, strategy="fail_fast", partial_ok=True, fingerprint=True, world_id="w1")
    md = res.metadata
    assert md.strategy == "fail_fast" and md.rows == covered and md.coverage_ratio == pytest.approx(covered / (3 * 1440))
    assert md.dataset_fingerprint.startswith("sha256:") and md.world_id == "w1"
    held = client.fetch(node, 60, T0, end, strategy="fail_fast", partial_ok=True, min_coverage=0.9)
    assert held.metadata.downgraded and held.metadata.downgrade_mode == "hold"
    assert held.metadata.downgrade_reason == "coverage_breach"
    ps = client.fetch(node, 60, T0 + 10 * DAY, T0 + 11 * DAY, strategy="partial_fill")
    assert ps.metadata.backfill.scheduled, ps.metadata


def test_coverage_and_series(client):
    node = "ohlcv:demo:COV-USD:1m"
    assert client.coverage(node) == []
    # Backfill jobs cover exactly their range: two of them, a day apart.
    client.backfill(node, 60, T0, T0 + 3600, poll_interval=0.05)
    client.backfill(node, 60, T0 + DAY, T0 + DAY + 3600, poll_interval=0.05)
    cov = client.coverage(node, 60)
    assert len(cov) == 2 and cov[0][0] <= T0 and cov[1][1] >= T0 + DAY + 3600, cov
    info = {s.node_id: s for s in client.series()}[node]
    assert info.interval == 60 and info.bounds == (cov[0][0], cov[1][1]) and info.fragments == 2
    assert ("close", "float64") in info.columns


def test_backfill_polls_the_job_and_reports_progress(client):
    node = "ohlcv:demo:BF-USD:5m"
    seen = []
    job = client.backfill(node, 300, "2024-01-01", "2024-02-01", progress=seen.append, poll_interval=0.05)
    assert job.state == "succeeded" and job.done
    # Whole aligned chunks of 900 bars are fetched, so at least the range is covered.
    assert job.chunks_total == job.chunks_done >= 3 and job.bars >= 31 * 288 and job.bars % 900 == 0
    assert seen and seen[-1].state == "succeeded" and seen[0].job_id == job.job_id
    (a, b), = client.coverage(node)
    assert a <= T0 and b >= T0 + 31 * DAY
    assert client.backfill_job(job.job_id).state == "succeeded"
    started = client.backfill(node, 300, "2024-02-01", "2024-02-02", wait=False)
    assert started.state in ("queued", "running", "succeeded")


def test_reports_of_a_series(client):
    node = "ohlcv:demo:REP-USD:1m"
    client.fetch(node, 60, T0, T0 + 3600)
    reps = client.reports(node, limit=5)
    assert reps and isinstance(reps[0], seamless.ReportRecord)
    assert reps[0].node_id == node and reps[0].range == (T0, T0 + 3600) and reps[0].flags == {}


def test_to_polars_without_polars_says_so(client):
    res = client.fetch("ohlcv:demo:FETCH-USD:1m", 60, T0, T0 + 600)
    try:
        import polars  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="polars"):
            res.to_polars()
    else:
        df = res.to_polars()
        assert df.height == 10 and "close" in df.columns
