"""Each data-quality rule counts what it did and does it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.quality import QualityLog, clean_prices, clean_table, count_return_clips


def _prices():
    idx = pd.to_datetime(
        [
            "2020-01-01",
            "2020-01-02",
            "2020-01-03",
            "2020-01-05",
            "2020-01-04",
            "2020-01-06",
            "2020-01-06",
            "2020-01-07",
            "2020-01-08",
        ]
    )
    return pd.DataFrame({"close": [100.0, np.nan, 101.0, 103.0, 102.0, 104.0, 104.5, -1.0, 105.0]}, index=idx)


def test_clean_prices_rules_count_and_act():
    log = QualityLog()
    out = clean_prices(_prices(), "toy", log, ["close"])
    c = log.to_dict()["toy"]
    assert c["missing"] == 1
    assert c["non_positive_price"] == 1
    assert c["out_of_order_ts"] == 1  # 01-04 arrived after 01-05
    assert c["duplicate_ts"] == 1  # 01-06 twice, the later one (104.5) wins
    assert out.index.is_monotonic_increasing and out.index.is_unique
    assert out.loc["2020-01-06", "close"] == 104.5
    assert (out["close"] > 0).all() and not out["close"].isna().any()
    assert len(out) == 6


def test_clean_prices_ts_column_and_return_outliers():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, 500)
    r[250] = -0.5  # a crash: counted, kept
    p = 100 * np.exp(np.cumsum(r))
    df = pd.DataFrame({"ts": np.arange(500), "px": p})
    log = QualityLog()
    out = clean_prices(df, "crash", log, ["px"], ts_col="ts")
    assert len(out) == 500
    assert log.get("crash", "return_outliers") == 1
    assert log.get("crash", "missing") == 0 and "missing" in log.to_dict()["crash"]


def test_count_return_clips():
    log = QualityLog()
    n = count_return_clips(np.array([0.0, 8.0, -8.0, 3.0]), "x", log, clip=8.0)
    assert n == 2 and log.get("x", "return_clipped") == 2


def _table():
    return pd.DataFrame(
        {
            "amount": [10.0, 12.0, -5.0, 11.0, 9.0, 10.5, 1e6, 11.5, np.nan, 10.2],
            "age": [30, 40, 35, np.nan, 50, 45, 38, 41, 33, 30],
            "job": ["a", "b", "a", None, "b", "a", "b", "a", "b", "a"],
            "target": [0, 1, 0, 1, np.nan, 0, 1, 0, 0, 0],
        }
    )


def test_clean_table_rules_count_and_act():
    log = QualityLog()
    df = _table()
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)  # one exact duplicate
    out = clean_table(df, "tbl", log, non_negative=["amount"], required=["target"], winsorize=["amount"], z=6.0)
    c = log.to_dict()["tbl"]
    assert c["duplicate_row"] == 1
    assert c["missing_required"] == 1  # target NaN row dropped
    assert c["negative_value"] == 1  # amount -5 is impossible: dropped
    assert c["missing_imputed"] == 3  # amount NaN, age NaN, job None
    assert c["outlier_winsorized"] == 1  # 1e6 clipped
    assert len(out) == 8
    assert not out.isna().any().any()
    assert (out["job"] == "missing").sum() == 1
    assert out["amount"].max() < 1e6 and out["amount"].min() >= 0
    assert out["amount"].max() < 100  # clipped to the robust bound, not dropped
    assert out["amount"].isna().sum() == 0


def test_winsor_bound_is_robust_z():
    x = pd.DataFrame({"v": np.r_[np.arange(1.0, 101.0), 1e5]})
    log = QualityLog()
    out = clean_table(x, "w", log, winsorize=["v"], z=3.0)
    med = np.median(x["v"])
    mad = np.median(np.abs(x["v"] - med))
    assert out["v"].max() == pytest.approx(med + 3.0 * mad / 0.6745)
    assert log.get("w", "outlier_winsorized") == 1


def test_imputation_uses_fit_on_statistics():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    test = pd.DataFrame({"x": [100.0, np.nan]})
    out = clean_table(test, "t", QualityLog(), fit_on=train)
    assert out["x"].iloc[1] == 2.0


def test_merge():
    a, b = QualityLog(), QualityLog()
    a.count("d", "r", 2)
    b.count("d", "r", 3)
    b.count("e", "s", 1)
    assert a.merge(b).to_dict() == {"d": {"r": 5}, "e": {"s": 1}}
