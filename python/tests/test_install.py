"""The package installs the documented way (no PyPI: pip with --no-build-isolation and
Debian's setuptools) and the installed copy works on its own: every module is in it and
it talks to a server."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]


def test_pip_install(tmp_path, server):
    try:
        import setuptools  # noqa: F401
    except ImportError:
        pytest.fail("the documented install needs setuptools: apt-get install python3-setuptools")
    src = tmp_path / "src-copy"
    # A copy: building in place would leave build/ and *.egg-info in the checkout.
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps", "--target", str(target), str(src)],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    installed = {p.name for p in (target / "seamless").glob("*.py")}
    shipped = {p.name for p in (PYTHON_DIR / "src" / "seamless").glob("*.py")}
    assert installed == shipped
    code = (
        "import seamless, sys\n"
        "assert seamless.__file__.startswith(sys.argv[1]), seamless.__file__\n"
        "r = seamless.Client(sys.argv[2]).fetch('ohlcv:demo:INSTALL-USD:1m', None, '2024-01-01', '2024-01-01T01:00:00Z', wire='json')\n"
        "print(r.metadata.rows)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c", code, str(target), server.url], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "60"
