"""Test set-up: a real `seamless serve` per test session, and the no-optional-packages mode.

SEAMLESS_TEST_PY_BLOCK_OPTIONAL=1 makes pandas, NumPy, pyarrow and Polars unimportable for
the whole run (an import hook installed before seamless is imported), so the same tests
check the standard-library-only client. SEAMLESS_TEST_BIN names the seamless binary; without
it the tests build one with `go build` (slow the first time).
"""

from __future__ import annotations

import importlib.abc
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

BLOCKED = ("pandas", "numpy", "pyarrow", "polars")


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked for this test run (SEAMLESS_TEST_PY_BLOCK_OPTIONAL=1)")
        return None


if os.environ.get("SEAMLESS_TEST_PY_BLOCK_OPTIONAL") == "1":
    for mod in list(sys.modules):
        if mod.split(".")[0] in BLOCKED:
            del sys.modules[mod]
    sys.meta_path.insert(0, _Block())

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = REPO / "internal" / "server" / "wire" / "testdata" / "golden"

sys.path.insert(0, str(REPO / "python" / "src"))


def have_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


class Server:
    """A `seamless serve` on a free loopback port over its own data dir."""

    def __init__(self, binary: str, env: dict, args: list, imports=()):
        self.data_dir = tempfile.mkdtemp(prefix="seamless-py-")
        full_env = dict(os.environ, SEAMLESS_DATA_DIR=self.data_dir, SEAMLESS_LOG_LEVEL="info", SEAMLESS_LOG_FORMAT="json")
        full_env.pop("SEAMLESS_API_TOKEN", None)
        full_env.pop("SEAMLESS_API_TOKENS", None)
        full_env.update(env)
        # Imports run before the server opens the (single-process) embedded store.
        for node, interval, text in imports:
            path = os.path.join(self.data_dir, "import.csv")
            with open(path, "w") as f:
                f.write(text)
            subprocess.run(
                [binary, "import", "--partial-ok", "--node", node, "--interval", str(interval), path],
                env=full_env, check=True, capture_output=True,
            )
        self.proc = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", *args],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log = []
        self.url = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                if self.url is None:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("msg") == "seamless.http.serving":
                        self.url = "http://" + rec["addr"]
                        ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or self.url is None:
            self.stop()
            raise RuntimeError("seamless serve did not start:\n" + "".join(self.log))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def binary(tmp_path_factory):
    path = os.environ.get("SEAMLESS_TEST_BIN")
    if path:
        return path
    out = tmp_path_factory.mktemp("bin") / "seamless"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/seamless"], cwd=REPO, check=True)
    return str(out)


# Bars that fail conformance (high below low, negative volume), stored with their
# findings so that a fetch without partial_ok is conformance_blocked.
BAD_NODE = "ohlcv:demo:BAD-FEED:1m"
BAD_CSV = "ts,open,high,low,close,volume\n1704067200,10,11,9,10,5\n1704067260,10,8,12,10,5\n1704067320,10,11,9,10,-5\n"


@pytest.fixture(scope="session")
def server(binary):
    s = Server(binary, {}, [], imports=[(BAD_NODE, 60, BAD_CSV)])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def hostile_server(binary):
    """Auth on (token s3cret), and every upstream call fails on its only attempt."""
    s = Server(
        binary,
        {"SEAMLESS_API_TOKENS": "alice:s3cret", "SEAMLESS_DEMO_ERROR_RATE": "1", "SEAMLESS_BACKFILL_MAX_ATTEMPTS": "1"},
        [],
    )
    yield s
    s.stop()


@pytest.fixture()
def client(server):
    import seamless

    return seamless.Client(server.url, timeout=120)


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def exact_server(binary):
    """Backfill chunks of one bar, so coverage is exactly what was asked for (the
    default 900-bar chunks round every backfill out to chunk boundaries)."""
    s = Server(binary, {"SEAMLESS_BACKFILL_WINDOW_BARS": "1"}, [])
    yield s
    s.stop()
