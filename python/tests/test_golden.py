"""The golden wire fixtures (internal/server/wire/testdata/golden), which the Go tests
hold the server's encoders to: every format decodes to the same bars and metadata, and
every error document of the API maps to its own exception class."""

from __future__ import annotations

import json
import math

import pytest

import seamless
from seamless import _frames
from seamless.errors import ServerError, error_class
from conftest import GOLDEN, have_pandas
from test_errors import Stub

URL = "golden://"
TS = [1704067200, 1704067260, 1704067320]
CLOSE = [100.5, 102.0, 102.75]


def read(name):
    return (GOLDEN / name).read_bytes()


def check(columns, meta):
    names, cols = columns
    assert names == ["ts", "open", "high", "low", "close", "volume"]
    assert [int(t) for t in cols["ts"]] == TS
    assert [float(v) for v in cols["close"]] == CLOSE
    vol = [float(v) for v in cols["volume"]]
    assert vol[:2] == [12.5, 0.001] and math.isnan(vol[2])
    md = seamless.Metadata.from_dict(meta, url=URL)
    assert (md.node_id, md.interval, md.rows, md.coverage_bounds) == ("ohlcv:demo:BTC-USD:1m", 60, 3, (TS[0], TS[-1] + 60))
    assert md.staleness_ms == 42 and md.sources.storage == 3 and md.conformance_flags == {"non_finite": 1}
    assert md.dataset_fingerprint == "sha256:" + "ab" * 32 and md.sla_phases["total"] == 1.25
    assert md.downgrade_mode is None and md.extra == {}


def test_golden_json():
    check(*_frames.decode_json(read("bars.json"), URL))


def test_golden_csv():
    check(*_frames.decode_csv(read("bars.csv"), read("bars.csv.metadata").decode(), URL))


def test_golden_arrow():
    pytest.importorskip("numpy", reason="the Arrow reader needs NumPy; the JSON path is the stdlib one")
    check(*_frames.decode_arrow(read("bars.arrows"), URL))


def test_golden_frames_agree():
    frames = [_frames.to_frame(_frames.decode_json(read("bars.json"), URL)[0])]
    frames.append(_frames.to_frame(_frames.decode_csv(read("bars.csv"), read("bars.csv.metadata").decode(), URL)[0]))
    if have_pandas():
        frames.append(_frames.to_frame(_frames.decode_arrow(read("bars.arrows"), URL)[0]))
        for f in frames[1:]:
            assert f.equals(frames[0])
            assert list(f.index.astype("int64") // 10**9) == TS
    else:
        assert frames[0]["ts"] == TS and frames[1]["ts"] == TS


def test_golden_healthz_is_compatible():
    doc = json.loads(read("healthz.json"))
    assert doc["api_version"].split(".")[0] == seamless.API_MAJOR


def golden_errors():
    return json.loads(read("errors.json"))


@pytest.mark.parametrize("entry", golden_errors(), ids=lambda e: e["body"]["error"]["code"])
def test_every_golden_error_document_raises_its_exception(entry):
    code = entry["body"]["error"]["code"]
    cls = error_class(code)
    assert cls is not ServerError, f"no exception class for error code {code!r}"
    headers = {"Content-Type": "application/json"}
    if entry.get("retry_after"):
        headers["Retry-After"] = entry["retry_after"]
    s = Stub({
        "/healthz": (200, {}, read("healthz.json")),
        "/v1/coverage": (entry["status"], headers, json.dumps(entry["body"]).encode()),
    })
    try:
        with pytest.raises(cls) as e:
            seamless.Client(s.url, retries=0).coverage("ohlcv:demo:BTC-USD:1m", 60)
    finally:
        s.close()
    err = e.value
    assert err.code == code and err.status == entry["status"]
    assert err.message == entry["body"]["error"]["message"] and err.details == entry["body"]["error"]
    if entry.get("retry_after"):
        assert err.retry_after == float(entry["retry_after"])
    if cls is seamless.CoverageIncomplete:
        assert err.missing == [(1704067200, 1704070800)]
    if cls is seamless.SLAExceeded:
        assert (err.phase, err.elapsed_ms, err.budget_ms) == ("total", 1500.5, 1000)
    if cls is seamless.UpstreamFailed:
        assert err.chunk == (1704024000, 1704078000) and err.attempts == 6 and "503" in err.cause_text
    if cls is seamless.ConformanceError:
        assert err.blocking == ["ohlc_inconsistent"] and err.report["flags_counts"] == {"ohlc_inconsistent": 1}


def test_every_client_class_has_a_golden_document():
    codes = {e["body"]["error"]["code"] for e in golden_errors()}
    assert set(seamless.errors.known_codes()) == codes
