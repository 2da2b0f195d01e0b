"""Client.subscribe against a real `seamless serve`: history, caught_up, live bars as they
close on the wall clock (the demo live feed, 1-second bars), exactly once across a cut
connection, a resume from a cursor and a server shutdown; typed refusals."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import seamless
from conftest import Server


def ts_of(ev):
    f = ev.frame
    return [int(x) for x in f["ts"]] if isinstance(f, dict) else [int(x.timestamp()) for x in f.index]


def closes_of(ev):
    f = ev.frame
    return list(f["close"]) if isinstance(f, dict) else list(f["close"])


def collect(sub, live_bars, timeout=60):
    """Events until live_bars bars arrived after caught_up; returns (events, ts list)."""
    events, seen, live = [], [], 0
    deadline = time.monotonic() + timeout
    for ev in sub:
        events.append(ev)
        if ev.type == "bars":
            seen += ts_of(ev)
            if any(e.type == "caught_up" for e in events):
                live += ev.rows
        if live >= live_bars or time.monotonic() > deadline:
            break
    return events, seen


def test_subscribe_history_then_live(client):
    node = "ohlcv:demo:PYSUB-USD:1s"
    start = int(time.time()) - 120
    with client.subscribe(node, None, start) as sub:
        events, seen = collect(sub, 3)
    types = [e.type for e in events]
    assert types[0] == "bars" and types.count("caught_up") == 1
    caught = events[types.index("caught_up")]
    history = [t for e in events[: types.index("caught_up")] if e.type == "bars" for t in ts_of(e)]
    assert history[0] == start and history == list(range(start, caught.next_ts))
    # The whole sequence is the grid from start, no gap and no duplicate across the seam.
    assert seen == list(range(start, start + len(seen)))
    assert {e.origin for e in events[: types.index("caught_up")] if e.type == "bars"} == {"history"}
    assert all(e.node_id == node and e.interval == 1 for e in events)
    assert events[0].metadata is not None and events[0].metadata.node_id == node
    # The bars delivered are the stored ones: a fetch of the same range agrees.
    got = client.fetch(node, None, start, start + len(seen), wire="json")
    closes = [c for e in events if e.type == "bars" for c in closes_of(e)]
    assert [float(x) for x in closes] == [float(x) for x in (got.frame["close"] if isinstance(got.frame, dict) else got.frame.close)]


class CutProxy:
    """A loopback TCP proxy to the server that can cut every open connection."""

    def __init__(self, target_url):
        host, port = target_url.split("//")[1].split(":")
        self.target = (host, int(port))
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen()
        self.url = "http://127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self):
        self.cut()
        self.lsock.close()


def test_subscribe_reconnects_exactly_once(server):
    proxy = CutProxy(server.url)
    try:
        client = seamless.Client(proxy.url, timeout=30)
        node = "ohlcv:demo:PYCUT-USD:1s"
        start = int(time.time()) - 30
        reconnects = []
        sub = client.subscribe(node, None, start, backoff=(0.05, 0.5), on_reconnect=lambda c, e: reconnects.append((c, e)))
        seen, cut_at = [], None
        deadline = time.monotonic() + 60
        for ev in sub:
            if ev.type == "bars":
                seen += ts_of(ev)
            if ev.type == "caught_up" or (ev.type == "bars" and cut_at is not None and len(reconnects) < 2 and len(seen) > cut_at + 1):
                # Cut after caught_up, and once more after a live bar came through.
                cut_at = len(seen)
                proxy.cut()
            if len(reconnects) >= 2 and len(seen) >= cut_at + 2 or time.monotonic() > deadline:
                break
        sub.close()
        assert len(reconnects) >= 2, "the proxy cut was not noticed"
        assert all(c is not None and c.startswith("c") for c, _ in reconnects)
        assert isinstance(reconnects[0][1], seamless.ConnectionFailed)
        assert seen == list(range(start, start + len(seen))), "a bar was lost or repeated across the reconnects"
    finally:
        proxy.close()


def test_subscribe_resumes_from_cursor(client):
    node = "ohlcv:demo:PYCUR-USD:1s"
    start = int(time.time()) - 20
    with client.subscribe(node, None, start) as sub:
        for ev in sub:
            if ev.type == "caught_up":
                cursor, next_ts = ev.cursor, ev.next_ts
                break
    time.sleep(2.5)  # bars close while nobody is subscribed
    with client.subscribe(node, None, start - 1000, cursor=cursor) as sub:
        events, seen = collect(sub, 1)
    assert seen[0] == next_ts and seen == list(range(next_ts, next_ts + len(seen)))
    assert len(seen) >= 2  # the bars closed while away come first


def test_subscribe_refusals(client, hostile_server):
    with pytest.raises(seamless.UnknownSource):
        next(iter(client.subscribe("ohlcv:nosuch:BTC-USD:1m", None, 0)))
    with pytest.raises(seamless.BadRequest) as e:
        next(iter(client.subscribe("ohlcv:demo:BTC-USD:1m", None, int(time.time()) + 86400)))
    assert e.value.field == "start"
    with pytest.raises(seamless.BadRequest):
        next(iter(client.subscribe("ohlcv:demo:BTC-USD:1m", 300)))  # interval disagrees with the node id
    with pytest.raises(seamless.Unauthorized):
        next(iter(seamless.Client(hostile_server.url).subscribe("ohlcv:demo:BTC-USD:1m")))
    with pytest.raises(ValueError):
        client.subscribe("ohlcv:demo:BTC-USD:1m", heartbeat_timeout=5)
    with pytest.raises(TypeError):
        client.subscribe("ohlcv:demo:BTC-USD:1m", max_wait_forever_ms=1)


def test_subscribe_server_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    client = seamless.Client("http://127.0.0.1:%d" % port, check_version=False)
    sub = client.subscribe("ohlcv:demo:BTC-USD:1m", backoff=(0.01, 0.02), max_reconnects=2)
    with pytest.raises(seamless.ConnectionFailed) as e:
        next(iter(sub))
    assert sub.reconnects == 2 and "127.0.0.1:%d" % port in str(e.value)


def test_subscribe_server_shutdown(binary):
    s = Server(binary, {}, [])
    try:
        client = seamless.Client(s.url, timeout=30)
        node = "ohlcv:demo:PYSHUT-USD:1s"
        reconnects = []
        sub = client.subscribe(node, None, int(time.time()) - 5, backoff=(0.01, 0.02), max_reconnects=1,
                               on_reconnect=lambda c, e: reconnects.append(c))
        it = iter(sub)
        for ev in it:
            if ev.type == "caught_up":
                cursor = ev.cursor
                break
        s.proc.terminate()  # graceful: the server ends every stream with reason shutdown
        with pytest.raises(seamless.ConnectionFailed):
            for ev in it:
                assert ev.type in ("bars", "heartbeat")
        assert len(reconnects) == 1 and reconnects[0] >= cursor  # resumed from the newest cursor
    finally:
        s.stop()
