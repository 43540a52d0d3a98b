"""Data-quality rules for the training data, counted per rule per dataset.

The rules are the stream's edge rules (``stream.core.contracts``) applied to tables: a price
must be > 0 and an amount must not be negative (impossible values are dropped, never
"repaired"); missing values are dropped when a row is useless without them and imputed
otherwise; extreme but possible values are kept and winsorised. Every action is counted in a
``QualityLog`` so the report can say exactly what happened to each dataset.

Rules
-----
``clean_prices``: ``missing``, ``non_positive_price``, ``out_of_order_ts``, ``duplicate_ts``,
``return_outliers`` (counted, not changed: the winsorising of returns happens in the shared
features via ``RETURN_CLIP`` on standardised returns; ``count_return_clips`` records how many
standardised returns hit that clip as ``return_clipped``).

``clean_table``: ``duplicate_row``, ``missing_required``, ``negative_value``,
``missing_imputed``, ``outlier_winsorized``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

ROBUST_Z = 0.6745  # MAD -> sd of a normal (modified z-score, Iglewicz & Hoaglin)
MEANAD_Z = 0.7979  # mean absolute deviation -> sd of a normal (used when the MAD is 0)
RETURN_OUTLIER_Z = 8.0  # robust z of a log return counted as an outlier (same scale as RETURN_CLIP)


class QualityLog:
    """How many rows/cells each rule touched, per dataset: ``{dataset: {rule: n}}``.

    Zero counts are kept (``count(d, r, 0)``) so the report shows that a rule was checked.
    """

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = defaultdict(dict)

    def count(self, dataset: str, rule: str, n: int | np.integer = 1) -> None:
        d = self._counts[dataset]
        d[rule] = d.get(rule, 0) + int(n)

    def get(self, dataset: str, rule: str) -> int:
        return self._counts.get(dataset, {}).get(rule, 0)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {ds: dict(sorted(rules.items())) for ds, rules in sorted(self._counts.items())}

    def merge(self, other: QualityLog) -> QualityLog:
        for ds, rules in other.to_dict().items():
            for rule, n in rules.items():
                self.count(ds, rule, n)
        return self

    def __repr__(self) -> str:
        return f"QualityLog({self.to_dict()!r})"


# --------------------------------------------------------------------------- helpers


def robust_z(x: np.ndarray) -> np.ndarray:
    """Modified z-score 0.6745 * (x - median) / MAD; falls back to the mean absolute deviation
    when the MAD is 0 (a column that is mostly one value), and to zeros when that is 0 too."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    z = np.zeros_like(x)
    if not ok.any():
        return z
    med = np.median(x[ok])
    mad = np.median(np.abs(x[ok] - med))
    if mad > 0:
        z[ok] = ROBUST_Z * (x[ok] - med) / mad
        return z
    meanad = np.mean(np.abs(x[ok] - med))
    if meanad > 0:
        z[ok] = MEANAD_Z * (x[ok] - med) / meanad
    return z


def _robust_bounds(x: np.ndarray, z: float) -> tuple[float, float] | None:
    """Values whose robust z is exactly +-z (the winsorising bounds), or None if the scale is 0."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    if mad > 0:
        half = z * mad / ROBUST_Z
    else:
        meanad = float(np.mean(np.abs(x - med)))
        if meanad == 0:
            return None
        half = z * meanad / MEANAD_Z
    return med - half, med + half


# --------------------------------------------------------------------------- prices


def clean_prices(
    df: pd.DataFrame,
    dataset: str,
    log: QualityLog,
    price_cols: Sequence[str],
    ts_col: str | None = None,
    *,
    outlier_z: float = RETURN_OUTLIER_Z,
    return_cols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Clean a price table (one instrument per column in ``price_cols``); the index is the
    timestamp when ``ts_col`` is None.

    * ``missing``: rows with a NaN in any price column are dropped;
    * ``non_positive_price``: rows with a price <= 0 in any price column are dropped (impossible,
      the stream's contract rejects them too);
    * ``out_of_order_ts``: rows whose timestamp is earlier than one before them; the table is
      sorted (stable) by timestamp;
    * ``duplicate_ts``: repeated timestamps, the last arrival is kept (a correction wins);
    * ``return_outliers``: log returns with a robust z beyond ``outlier_z`` in each of
      ``return_cols`` (default: all price columns), counted only (real crashes are real; the
      features clip standardised returns).
    """
    price_cols = list(price_cols)
    out = df.copy()
    for c in price_cols:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    prices = out[price_cols]

    missing = prices.isna().any(axis=1) | ~np.isfinite(prices.fillna(0.0)).all(axis=1)
    log.count(dataset, "missing", int(missing.sum()))
    out = out.loc[~missing]

    bad = (out[price_cols] <= 0).any(axis=1)
    log.count(dataset, "non_positive_price", int(bad.sum()))
    out = out.loc[~bad]

    ts = out[ts_col] if ts_col is not None else pd.Series(out.index, index=out.index)
    ts_values = ts.to_numpy()
    if len(ts_values):
        running_max = pd.Series(ts_values).cummax().shift(1)
        late = (pd.Series(ts_values) < running_max).to_numpy()
    else:
        late = np.zeros(0, dtype=bool)
    log.count(dataset, "out_of_order_ts", int(late.sum()))
    order = np.argsort(ts_values, kind="stable")
    out = out.iloc[order]
    ts_sorted = ts_values[order]

    dup = pd.Series(ts_sorted).duplicated(keep="last").to_numpy()
    log.count(dataset, "duplicate_ts", int(dup.sum()))
    out = out.iloc[~dup]

    n_out = 0
    for c in price_cols if return_cols is None else list(return_cols):
        r = np.diff(np.log(out[c].to_numpy(dtype=np.float64)))
        if len(r) > 2:
            n_out += int((np.abs(robust_z(r)) > outlier_z).sum())
    log.count(dataset, "return_outliers", n_out)
    return out


def count_return_clips(standardised: np.ndarray, dataset: str, log: QualityLog, clip: float) -> int:
    """Record how many standardised returns sit at the ``RETURN_CLIP`` bound (winsorised by the
    shared features) as rule ``return_clipped``; returns the count."""
    z = np.asarray(standardised, dtype=np.float64)
    n = int((np.abs(z) >= clip).sum())
    log.count(dataset, "return_clipped", n)
    return n


# --------------------------------------------------------------------------- tables


def clean_table(
    df: pd.DataFrame,
    dataset: str,
    log: QualityLog,
    *,
    non_negative: Iterable[str] = (),
    required: Iterable[str] = (),
    winsorize: Iterable[str] = (),
    z: float = 6.0,
    dedupe: bool = True,
    fit_on: pd.DataFrame | None = None,
    impute: bool = True,
) -> pd.DataFrame:
    """Clean a tabular dataset, applying the rules in this order:

    1. ``duplicate_row`` (if ``dedupe``): exact duplicate rows dropped, first kept;
    2. ``missing_required``: rows with a missing value in a ``required`` column dropped;
    3. ``negative_value``: rows with a value < 0 in a ``non_negative`` column dropped (impossible);
    4. ``missing_imputed``: every remaining missing cell imputed, numeric columns with the median,
       other columns with the category ``"missing"`` (counted per cell);
    5. ``outlier_winsorized``: in ``winsorize`` columns, values whose robust z
       ``0.6745 * (x - median) / MAD`` is beyond ``z`` are clipped to the value at exactly ``z``
       (counted per cell).

    Medians and MADs come from ``fit_on`` when given (e.g. the training split, so the hold-out
    is cleaned with training statistics), else from ``df`` itself. ``impute=False`` leaves step 4
    to the caller (e.g. fills fitted inside each training fold).
    """
    required, non_negative, winsorize = list(required), list(non_negative), list(winsorize)
    out = df.copy()

    if dedupe:
        dup = out.duplicated(keep="first")
        log.count(dataset, "duplicate_row", int(dup.sum()))
        out = out.loc[~dup]

    if required:
        miss = out[required].isna().any(axis=1)
    else:
        miss = pd.Series(False, index=out.index)
    log.count(dataset, "missing_required", int(miss.sum()))
    out = out.loc[~miss]

    neg = pd.Series(False, index=out.index)
    for c in non_negative:
        neg |= pd.to_numeric(out[c], errors="coerce") < 0
    log.count(dataset, "negative_value", int(neg.sum()))
    out = out.loc[~neg].copy()

    ref = out if fit_on is None else fit_on
    n_imputed = 0
    for c in out.columns if impute else ():
        na = out[c].isna()
        k = int(na.sum())
        if not k:
            continue
        if pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            med = pd.to_numeric(ref[c], errors="coerce").median()
            out[c] = out[c].fillna(0.0 if pd.isna(med) else med)
        else:
            if isinstance(out[c].dtype, pd.CategoricalDtype) and "missing" not in out[c].cat.categories:
                out[c] = out[c].cat.add_categories(["missing"])
            out[c] = out[c].fillna("missing")
        n_imputed += k
    log.count(dataset, "missing_imputed", n_imputed)

    n_wins = 0
    for c in winsorize:
        bounds = _robust_bounds(pd.to_numeric(ref[c], errors="coerce").to_numpy(dtype=np.float64), z)
        if bounds is None:
            continue
        lo, hi = bounds
        if non_negative and c in non_negative:
            lo = max(lo, 0.0)
        x = out[c].astype("float64")
        hit = (x < lo) | (x > hi)
        n_wins += int(hit.sum())
        out[c] = x.clip(lo, hi)
    log.count(dataset, "outlier_winsorized", n_wins)
    return out
