"""The credit loaders and their encodings: shapes and bad rates, imputation counted, fills and
bounds fitted on training rows only, raw rows rebuilt from a card's encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data import credit
from training.quality import QualityLog

pytestmark = pytest.mark.training


@pytest.mark.parametrize(
    "name, rows, bad_rate, n_features",
    [
        ("german", 1000, 0.30, 61),
        ("credit_data", 4452, 0.281, 29),
        ("lending_club", 9857, 0.0525, 119),
    ],
)
def test_loaders_shapes_and_bad_rates(cache, name, rows, bad_rate, n_features):
    log = QualityLog()
    cs = credit.load(name, cache, log)
    x, names = cs.features()
    assert len(cs.frame) == rows and x.shape == (rows, n_features) and len(names) == n_features
    assert cs.bad_rate == pytest.approx(bad_rate, abs=0.002)
    assert set(np.unique(cs.y)) == {0, 1} and np.isfinite(x).all()
    assert (cache / f"{'german_credit' if name == 'german' else name}.parquet").exists()  # cached as Parquet
    assert log.to_dict()  # went through clean_table


def test_credit_data_imputation_is_counted_and_encoded(cache):
    log = QualityLog()
    cs = credit.load("credit_data", cache, log)
    assert log.get("credit_data", "missing_imputed") > 400
    enc = cs.fit_encoding()
    assert enc["fill"]["Income"] > 0 and enc["fill"]["Home"] == "missing" and "fill" not in cs.encoding


def test_fills_and_bounds_come_from_the_training_rows_only(cache):
    """Would fail if the loader or the encoding fitted anything on held-out rows: making the other
    rows absurd changes neither the fills nor the winsorising bounds, and those are exactly the
    training rows' median and robust-z bounds."""
    from training.quality import _robust_bounds

    cs = credit.load("credit_data", cache, QualityLog())
    train = np.arange(0, len(cs.frame), 2)
    enc = cs.fit_encoding(train)
    other = cs.frame.copy()
    rest = np.setdiff1d(np.arange(len(other)), train)
    other.loc[rest, "Income"] = other.loc[rest, "Income"] * 1000 + 1e6
    twisted = credit.CreditSet(cs.name, other, cs.target, cs.y, cs.numeric, cs.categorical, cs.source, cs.winsorize)
    assert twisted.fit_encoding(train) == enc
    ref = cs.frame.iloc[train]
    assert enc["fill"]["Income"] == pytest.approx(float(ref["Income"].median()))
    lo, hi = _robust_bounds(ref["Income"].to_numpy(np.float64), credit.WINSOR_Z)
    assert enc["clip"]["Income"] == pytest.approx([max(lo, 0.0), hi])
    assert enc != cs.fit_encoding()  # all rows would give other statistics
    x, names = twisted.features(enc)  # held-out rows are clipped, not refitted
    assert x[rest, names.index("Income")].max() <= hi + 1e-3


def test_encoding_rebuilds_rows_from_a_raw_csv(german, tmp_path):
    """What `finstream score` does: raw dataset columns + the card's encoding -> the model row."""
    enc = german.fit_encoding(np.arange(0, 1000, 2))  # as a card carries it: fitted fills and bounds
    x, names = german.features(enc)
    path = tmp_path / "raw.csv"
    german.frame.drop(columns=[german.target]).to_csv(path, index=False)
    back, names2 = credit.encode(pd.read_csv(path), enc)
    assert names2 == names == credit.feature_names(german.encoding)
    np.testing.assert_array_equal(back, x)
    assert all("=" in n for n in names[len(german.numeric) :])
