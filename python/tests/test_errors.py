"""Error codes → typed exceptions, live where the server can be made to produce them,
and the failures before an answer: unreachable, timeouts, malformed answers, an
incompatible server, 429 with Retry-After. (Every code of the golden error documents
is checked in test_golden.py.)"""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

import seamless
from conftest import BAD_NODE

T0 = 1704067200
NODE = "ohlcv:demo:ERR-USD:1m"


def test_bad_request(client):
    with pytest.raises(seamless.BadRequest) as e:
        client.fetch(NODE, 60, T0 + 60, T0)
    assert e.value.status == 400 and e.value.code == "bad_request" and e.value.field
    assert "/v1/bars" in e.value.url and e.value.message
    assert isinstance(e.value, ValueError)  # also a ValueError, for generic handlers


def test_not_covered_is_coverage_incomplete_with_the_missing_ranges(client):
    with pytest.raises(seamless.CoverageIncomplete) as e:
        client.fetch(NODE, 60, T0, T0 + 3600, strategy="fail_fast")
    assert e.value.status == 404 and e.value.code == "not_covered"
    assert e.value.missing == [(T0, T0 + 3600)] and e.value.node_id == NODE and e.value.interval == 60
    assert seamless.NotCovered is seamless.CoverageIncomplete


def test_unknown_source(client):
    with pytest.raises(seamless.UnknownSource) as e:
        client.fetch("ohlcv:nosuchvenue:BTC-USD:1m", 60, T0, T0 + 60)
    assert e.value.details["source"] == "nosuchvenue"


def test_unknown_backfill_job_is_not_found(client):
    with pytest.raises(seamless.NotFound):
        client.backfill_job("0" * 32)


def test_sla_exceeded_carries_the_phase(client):
    with pytest.raises(seamless.SLAExceeded) as e:
        client.fetch(NODE, 60, T0 + 86400, T0 + 2 * 86400, max_sync_gap_bars=10, on_violation="fail_fast")
    assert e.value.status == 504 and e.value.phase == "sync_gap"
    assert e.value.sla_violation["missing_bars"] == 1440 and e.value.sla_violation["budget_bars"] == 10


def test_domain_policy(client):
    with pytest.raises(seamless.DomainPolicyError) as e:
        client.fetch(NODE, 60, T0, T0 + 60, execution_domain="backtest")
    assert e.value.status == 409 and e.value.domain == "backtest" and "as_of" in e.value.reason


def test_conformance_blocked_carries_the_report(client):
    with pytest.raises(seamless.ConformanceError) as e:
        client.fetch(BAD_NODE, 60, T0, T0 + 180, strategy="fail_fast")
    assert e.value.status == 422
    assert e.value.report["flags_counts"] == {"negative_volume": 1, "ohlc_inconsistent": 1}
    assert sorted(e.value.blocking) == ["negative_volume", "ohlc_inconsistent"]
    # partial_ok serves the normalised bars with the findings in the metadata.
    res = client.fetch(BAD_NODE, 60, T0, T0 + 180, strategy="fail_fast", partial_ok=True)
    assert res.metadata.conformance_flags == {"negative_volume": 1, "ohlc_inconsistent": 1}


def test_unauthorized_without_or_with_a_wrong_token(hostile_server):
    for token in (None, "wrong"):
        c = seamless.Client(hostile_server.url, token=token)
        assert c.health()["status"] == "ok"  # /healthz needs no token
        with pytest.raises(seamless.Unauthorized) as e:
            c.coverage(NODE)
        assert e.value.status == 401


def test_upstream_failed_in_fetch_and_in_a_backfill_job(hostile_server):
    c = seamless.Client(hostile_server.url, token="s3cret")
    with pytest.raises(seamless.UpstreamFailed) as e:
        c.fetch(NODE, 60, T0, T0 + 3600, strategy="auto_backfill")
    assert e.value.status == 502 and e.value.attempts == 1 and e.value.chunk is not None and e.value.cause_text
    with pytest.raises(seamless.UpstreamFailed) as e:
        c.backfill(NODE, 60, T0, T0 + 3600, poll_interval=0.05)
    assert e.value.job.state == "failed" and e.value.job.failed_chunks


# --- failures before an answer ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_connection_failed_with_url_and_cause():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(seamless.ConnectionFailed) as e:
        seamless.Client(url).fetch(NODE, 60, T0, T0 + 60)
    assert e.value.url.startswith(url) and isinstance(e.value.cause, ConnectionRefusedError)
    assert isinstance(e.value, ConnectionError) and url in str(e.value)


def test_a_server_that_never_answers_is_a_timeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts connections, never answers
    try:
        url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        with pytest.raises(seamless.Timeout) as e:
            seamless.Client(url, timeout=0.3).health()
        assert e.value.url == url + "/healthz" and isinstance(e.value, TimeoutError)
    finally:
        silent.close()


class Stub:
    """A local HTTP server answering each path with a fixed (status, headers, body); a
    list of answers is served in turn."""

    def __init__(self, routes):
        self.routes = routes
        self.hits = {}
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                stub.hits[path] = stub.hits.get(path, 0) + 1
                answer = stub.routes.get(path, (404, {}, b'{"error":{"code":"not_found","message":"no route"}}'))
                if isinstance(answer, list):
                    answer = answer[min(stub.hits[path], len(answer)) - 1]
                status, headers, body = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


HEALTHY = (200, {"Content-Type": "application/json"}, b'{"status":"ok","api_version":"1.0"}')


@pytest.fixture()
def stub():
    made = []

    def make(routes):
        s = Stub(routes)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.mark.parametrize(
    "health",
    [b'{"status":"ok","api_version":"2.0"}', b'{"status":"ok"}', b"<html>a proxy</html>"],
)
def test_incompatible_or_foreign_server(stub, health):
    s = stub({"/healthz": (200, {}, health)})
    with pytest.raises((seamless.IncompatibleServer, seamless.MalformedResponse)) as e:
        seamless.Client(s.url).coverage(NODE)
    if health.startswith(b"{"):
        assert isinstance(e.value, seamless.IncompatibleServer)
    assert s.hits.get("/v1/coverage") is None  # nothing asked of an incompatible server


@pytest.mark.parametrize(
    "body, why",
    [
        (b'{"metadata":{"node_id":"x"', "not JSON"),
        (b'{"metadata":{},"data":{"ts":[]}}', "lacks the field"),
        (b'{"data":{"ts":[1]}}', "lacks its metadata"),
        (b"[]", "lacks its metadata"),
    ],
)
def test_malformed_bars_documents(stub, body, why):
    s = stub({"/healthz": HEALTHY, "/v1/bars": (200, {}, body)})
    with pytest.raises(seamless.MalformedResponse, match=why) as e:
        seamless.Client(s.url).fetch(NODE, 60, T0, T0 + 60, wire="json")
    assert "/v1/bars" in e.value.url


def test_truncated_csv_is_malformed(stub, server):
    good = seamless.Client(server.url).fetch(NODE, 60, T0, T0 + 300, wire="json")
    meta = json.dumps(good.metadata.to_dict())
    s = stub({"/healthz": HEALTHY, "/v1/bars": (200, {"X-Seamless-Metadata": meta}, b"ts,open,high,low,close,volume\n1704067200,1,1,1,1,1\n")})
    with pytest.raises(seamless.MalformedResponse, match="truncated"):
        seamless.Client(s.url).fetch(NODE, 60, T0, T0 + 300, wire="csv")


def test_truncated_arrow_stream_is_malformed(stub, server):
    pytest.importorskip("numpy")
    import urllib.request

    q = f"/v1/bars?node_id={NODE}&interval=60&start={T0}&end={T0 + 300}&format=arrow"
    body = urllib.request.urlopen(server.url + q).read()
    s = stub({"/healthz": HEALTHY, "/v1/bars": (200, {}, body[:-8])})  # without the end-of-stream marker
    with pytest.raises(seamless.MalformedResponse, match="truncated"):
        seamless.Client(s.url).fetch(NODE, 60, T0, T0 + 300, wire="arrow")


def test_an_error_page_that_is_not_a_document_is_typed_by_status(stub):
    s = stub({"/healthz": HEALTHY, "/v1/coverage": (401, {}, b"<html>login</html>"), "/v1/series": (502, {}, b"bad gateway")})
    c = seamless.Client(s.url)
    with pytest.raises(seamless.Unauthorized) as e:
        c.coverage(NODE)
    assert "login" in e.value.message and e.value.status == 401
    with pytest.raises(seamless.InternalError) as e:
        c.series()
    assert e.value.status == 502


def test_too_many_requests_waits_for_retry_after_then_retries(stub):
    busy = (429, {"Retry-After": "0"}, b'{"error":{"code":"too_many_requests","message":"16 fetches already in progress"}}')
    ok = (200, {}, b'{"node_id":"n","interval":60,"ranges":[{"start":0,"end":60}]}')
    s = stub({"/healthz": HEALTHY, "/v1/coverage": [busy, busy, ok]})
    assert seamless.Client(s.url, retries=2).coverage(NODE) == [(0, 60)]
    assert s.hits["/v1/coverage"] == 3
    s2 = stub({"/healthz": HEALTHY, "/v1/coverage": [busy, ok]})
    with pytest.raises(seamless.TooManyRequests) as e:
        seamless.Client(s2.url, retries=0).coverage(NODE)
    assert e.value.retry_after == 0.0 and e.value.status == 429
