"""Tiny seeded synthetic data sets for the generated model checks (``Example``).

Synthetic on purpose and small on purpose: the checks are about plumbing (the exported graph
computes what ``predict`` computes, the same seed gives the same file, the card describes the
graph), never about accuracy, and the whole contract suite must stay well under a minute.
"""

from __future__ import annotations

import numpy as np

from stream.core.features import FORECAST_WINDOW, RETURN_CLIP, Standardiser, log_returns
from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS


def score_rows(seed: int, n: int = 240, n_in: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Rows with two skewed money-like columns first and a label that depends on three columns."""
    rng = np.random.default_rng(seed)
    money = rng.lognormal(3.0, 1.2, size=(n, 2))
    rest = rng.normal(size=(n, n_in - 2))
    x = np.concatenate([money, rest], axis=1).astype(np.float32)
    logit = 0.8 * np.log1p(money[:, 0]) - 2.4 + 1.2 * rest[:, 0] - 0.7 * rest[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return x, y


def market(seed: int, n_prices: int = 360, symbols: int = 2, window: int = FORECAST_WINDOW):
    """A ``MarketData`` of GARCH-like random walks, windowed exactly like ``training.data.market.prepare``."""
    from training.data.market import Instrument, MarketData, build_windows, split_sizes

    rng = np.random.default_rng(seed)
    series = []
    for _ in range(symbols):
        sd, r = 0.01, np.empty(n_prices - 1)
        for t in range(len(r)):
            r[t] = rng.normal(0.0002, sd)
            sd = np.sqrt(1e-6 + 0.1 * r[t] ** 2 + 0.85 * sd**2)
        series.append(100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)])))
    n_tr, n_va = split_sizes(n_prices - 1 - window)
    norm = Standardiser.fit(np.concatenate([log_returns(p)[: n_tr + window] for p in series]), clip=RETURN_CLIP)
    data = MarketData(norm=norm, window=window)
    for k, p in enumerate(series):
        X, y = build_windows(p, norm, window)
        dates = np.arange(len(y)).astype("datetime64[D]")
        data.instruments.append(Instrument(f"SYN{k}", "synthetic", dates, log_returns(p), X, y, n_tr, n_va))
    return data


def market_rows(data, which: str = "test") -> np.ndarray:
    return data.pooled(which)[0]


def recommender_inputs(seed: int, n: int = 300, interest: bool = False) -> dict[str, np.ndarray]:
    """Holdings with a few co-held pairs, attributes that shift who holds what, optional interest."""
    rng = np.random.default_rng(seed)
    n_p, n_a = len(PRODUCT_IDS), len(CUSTOMER_ATTRIBUTES)
    a = rng.integers(0, 10, size=(n, n_a)).astype(np.float32)
    p = 0.08 + 0.25 * (a[:, :3].mean(axis=1, keepdims=True) > 4.5)
    h = (rng.random((n, n_p)) < p).astype(np.float32)
    h[:, 1] = np.maximum(h[:, 1], h[:, 0] * (rng.random(n) < 0.7))  # a co-held pair for item-CF
    out = {"holdings": h, "attributes": a}
    if interest:
        out["interest"] = (rng.random((n, n_p)) * (rng.random((n, n_p)) < 0.1)).astype(np.float32)
    return out
