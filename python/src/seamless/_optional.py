"""Optional dependencies, imported on first use and remembered.

The core needs none of them. NumPy arrives with pandas; pyarrow and Polars are only
ever used when already installed: the client never asks for them.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Optional

_cache: Dict[str, Optional[Any]] = {}


def _load(name: str) -> Optional[Any]:
    if name not in _cache:
        try:
            _cache[name] = importlib.import_module(name)
        except ImportError:
            _cache[name] = None
    return _cache[name]


def numpy() -> Optional[Any]:
    return _load("numpy")


def pandas() -> Optional[Any]:
    return _load("pandas")


def pyarrow() -> Optional[Any]:
    return _load("pyarrow")


def polars() -> Optional[Any]:
    return _load("polars")
