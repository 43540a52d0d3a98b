"""Market features: the training window builder and the stream's serving path give identical arrays."""

from __future__ import annotations

import csv
from collections import deque

import numpy as np
import pytest

from stream.core.features import FORECAST_WINDOW, RETURN_CLIP, Standardiser, forecast_input, log_returns, return_windows
from stream.settings import REPO_ROOT
from training.data import market

SP500_CSV = REPO_ROOT / "stream" / "data" / "sp500.csv"


def real_prices(n: int | None = None) -> np.ndarray:
    """Real S&P 500 closes from the bundled replay file (as the stream would read them)."""
    with open(SP500_CSV, newline="") as f:
        px = np.array([float(row["Close"]) for row in csv.DictReader(f)])
    return px if n is None else px[:n]


def test_training_windows_equal_serving_windows_on_real_prices():
    prices = real_prices(1500)
    norm = Standardiser.fit(log_returns(prices[:1000]))
    W = FORECAST_WINDOW
    X_train, y = market.build_windows(prices, norm, W)

    # serving: the stream keeps the last W+1 prices per symbol and scores when the buffer is full
    buf: deque[float] = deque(maxlen=W + 1)
    served = []
    for p in prices[:-1]:  # the last price is only ever a target
        buf.append(float(p))
        if len(buf) == W + 1:
            served.append(forecast_input(np.array([buf]), norm)[0])
    served = np.stack(served)
    assert X_train.shape == served.shape == (len(prices) - 1 - W, W, 1)
    assert X_train.dtype == served.dtype == np.float32
    assert np.array_equal(X_train, served)  # bit-identical, not merely close

    # batched serving (N windows at once) is the same too
    windows = np.lib.stride_tricks.sliding_window_view(prices[:-1], W + 1)
    assert np.array_equal(forecast_input(windows, norm), X_train)
    # targets: the raw log return right after each window
    assert np.allclose(y, np.log(prices[W + 1 :] / prices[W:-1]))


def test_standardiser_clip_behaviour():
    norm = Standardiser(mean=0.001, std=0.01)
    assert norm.clip == RETURN_CLIP
    z = norm.apply(np.array([0.001, 0.011, 1.0, -1.0, 0.001 - 0.08]))
    assert z.tolist() == pytest.approx([0.0, 1.0, RETURN_CLIP, -RETURN_CLIP, -8.0])
    assert np.abs(norm.apply(np.random.default_rng(0).normal(0, 1, 1000))).max() <= RETURN_CLIP
    # a crash day becomes exactly the clip, in training and serving alike
    crash = np.array([[100.0, 100.0, 50.0]])
    assert forecast_input(crash, norm)[0, 1, 0] == -RETURN_CLIP
    # constant series: sd 0 -> 1, no division by zero
    flat = Standardiser.fit(np.zeros(10))
    assert flat.std == 1.0
    assert Standardiser.from_dict(norm.to_dict()) == norm


def test_return_windows_shape():
    r = log_returns(real_prices(200))
    w = return_windows(r, FORECAST_WINDOW)
    assert w.shape == (len(r) - FORECAST_WINDOW + 1, FORECAST_WINDOW)
    assert np.array_equal(w[0], r[:FORECAST_WINDOW]) and np.array_equal(w[-1], r[-FORECAST_WINDOW:])
    assert not w.flags.writeable


def test_forecast_input_shape_and_dtype():
    prices = real_prices(FORECAST_WINDOW + 5)
    windows = np.lib.stride_tricks.sliding_window_view(prices, FORECAST_WINDOW + 1)
    x = forecast_input(windows, Standardiser(0.0, 0.01))
    assert x.shape == (5, FORECAST_WINDOW, 1) and x.dtype == np.float32
