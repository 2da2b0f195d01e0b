"""seamless.qmtl.SeamlessHistoryProvider driven as the reference's provider tests drive a
HistoryProvider: fetch, coverage and fill_missing over gaps, closed ranges in and
inclusive coverage out."""

from __future__ import annotations

import asyncio
import types

import pytest

import seamless
from conftest import have_pandas
from seamless.qmtl import SeamlessHistoryProvider

IV = 60
A = 1704067200  # 2024-01-01T00:00:00Z


def run(coro):
    return asyncio.run(coro)


@pytest.fixture()
def provider(exact_server):
    return SeamlessHistoryProvider(exact_server.url, strategy="fail_fast", partial_ok=True, poll_interval=0.02)


def test_fill_missing_takes_a_closed_range_and_keeps_its_last_bar(provider):
    node = "ohlcv:demo:QA-USD:1m"
    end = A + 9 * IV  # closed: ten bars, A … A+540
    run(provider.fill_missing(A, end, node_id=node, interval=IV))
    assert run(provider.coverage(node_id=node, interval=IV)) == [(A, end)]
    assert provider.client.coverage(node, IV) == [(A, end + IV)]  # Seamless' half-open view
    if have_pandas():
        df = run(provider.fetch(A, end + IV, node_id=node, interval=IV))
        assert df["ts"].tolist() == list(range(A, end + 1, IV))
        assert str(df["ts"].dtype) == "int64" and list(df.columns)[:2] == ["ts", "open"]
        assert provider.last_fetch_metadata.rows == 10
        assert df.attrs["coverage_bounds"] == (A, end + IV)


def test_fill_missing_over_a_gap_fetches_only_the_gap(provider):
    node = "ohlcv:demo:QB-USD:1m"
    run(provider.fill_missing(A, A + 4 * IV, node_id=node, interval=IV))
    run(provider.fill_missing(A + 10 * IV, A + 14 * IV, node_id=node, interval=IV))
    assert run(provider.coverage(node_id=node, interval=IV)) == [(A, A + 4 * IV), (A + 10 * IV, A + 14 * IV)]
    if have_pandas():
        df = run(provider.fetch(A, A + 15 * IV, node_id=node, interval=IV))
        assert df["ts"].tolist() == [A + k * IV for k in list(range(5)) + list(range(10, 15))]
        assert provider.last_fetch_metadata.coverage_ratio == pytest.approx(10 / 15)
    run(provider.fill_missing(A, A + 14 * IV, node_id=node, interval=IV))
    assert provider.last_backfill_job.bars == 5  # the gap, nothing already stored
    assert run(provider.coverage(node_id=node, interval=IV)) == [(A, A + 14 * IV)]
    if have_pandas():
        df = run(provider.fetch(A, A + 15 * IV, node_id=node, interval=IV))
        assert df["ts"].tolist() == list(range(A, A + 15 * IV, IV))
        assert provider.last_fetch_metadata.sources.storage + provider.last_fetch_metadata.sources.cache == 15


def test_adjacent_closed_ranges_merge_interval_aware(provider):
    node = "ohlcv:demo:QC-USD:1m"
    run(provider.fill_missing(A, A + 10 * IV, node_id=node, interval=IV))
    run(provider.fill_missing(A + 11 * IV, A + 20 * IV, node_id=node, interval=IV))
    assert run(provider.coverage(node_id=node, interval=IV)) == [(A, A + 20 * IV)]


def test_ensure_range_with_an_end_off_the_grid(provider):
    node = "ohlcv:demo:QD-USD:1m"
    run(provider.ensure_range(A, A + 5 * IV + 30, node_id=node, interval=IV))  # closed, last bar A+300
    assert run(provider.coverage(node_id=node, interval=IV)) == [(A, A + 5 * IV)]
    run(provider.ensure_range(A + 10 * IV, A + 5 * IV, node_id=node, interval=IV))  # empty: no-op
    assert run(provider.coverage(node_id=node, interval=IV)) == [(A, A + 5 * IV)]


def test_node_mapping_and_bind_stream(exact_server):
    mapped = SeamlessHistoryProvider(exact_server.url, node_id="ohlcv:demo:QE-USD:1m", poll_interval=0.02)
    run(mapped.fill_missing(A, A + IV, node_id="a1b2c3-qmtl-node-hash", interval=IV))
    assert mapped.client.coverage("ohlcv:demo:QE-USD:1m", IV) == [(A, A + 2 * IV)]
    bound = SeamlessHistoryProvider(seamless.Client(exact_server.url))
    bound.bind_stream(types.SimpleNamespace(node_id="ohlcv:demo:QE-USD:1m", interval=IV))
    assert run(bound.coverage(node_id=None, interval=IV)) == [(A, A + IV)]


def test_errors_stay_typed_through_the_adapter(exact_server):
    p = SeamlessHistoryProvider(exact_server.url, strategy="fail_fast")
    with pytest.raises((seamless.CoverageIncomplete, ImportError)):
        run(p.fetch(A + 86400, A + 86400 + IV, node_id="ohlcv:demo:QF-USD:1m", interval=IV))
    with pytest.raises(seamless.BadRequest):
        run(p.fill_missing(A, A + IV, node_id="ohlcv:demo:QF-USD:1m", interval=3600))  # interval mismatch


@pytest.mark.skipif(have_pandas(), reason="checks the message given when pandas is absent")
def test_fetch_without_pandas_says_so(provider):
    node = "ohlcv:demo:QA-USD:1m"
    with pytest.raises(ImportError, match="pandas"):
        run(provider.fetch(A, A + IV, node_id=node, interval=IV))
