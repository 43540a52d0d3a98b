"""A real hourly quote feed through the real worker: one forecast per closed 1h bar, horizon 3600 s,
bands covering about 95% of the realised hourly moves."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import orjson
import pandas as pd
import pytest

from stream.core.manifest import read_manifest
from stream.settings import REPO_ROOT
from stream.tools.replay import parse_mappings, rows_to_records
from tests.integration.workers import MODEL_DIR, consume, produce
from training.data.market import load_hourly_prices, split_sizes
from training.quality import QualityLog


def interbank_rows(closes: pd.Series) -> list[dict]:
    """EUR/USD hours as an interbank quote file gives them: yyyymmddhhmm stamps, bid/ask only, one
    quote per hour (at :30), half a pip either side of the real hourly close."""
    return [
        {
            "pair": "EURUSD",
            "time": (t + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"),
            "bid": f"{p - 0.00005:.6f}",
            "ask": f"{p + 0.00005:.6f}",
        }
        for t, p in closes.items()
    ]


def holdout_closes(window: int) -> pd.Series:
    """The hourly closes of the training hold-out: the windows of its samples and their targets."""
    closes = load_hourly_prices(None, QualityLog())["EURUSD"]
    _, n_val = split_sizes(len(closes) - 1 - window)
    return closes.iloc[n_val:]


def test_hourly_quotes_give_one_forecast_per_closed_bar_covering_95_percent(worker_run):
    manifest = read_manifest(MODEL_DIR)
    card = manifest.get(manifest.defaults["forecast@1h"])
    window = card.inputs[0].shape[1]
    closes = holdout_closes(window)
    run = worker_run(FINSTREAM_BAR_INTERVAL="1d", FINSTREAM_BAR_INTERVALS="EURUSD=1h").start()
    s = run.settings
    ticks = list(
        rows_to_records(
            interbank_rows(closes), "ticks", parse_mappings(["symbol=pair", "ts=time"], "ticks"), None, "%Y%m%d%H%M"
        )
    )
    late = {"v": 1, "symbol": "EURUSD", "ts": orjson.loads(ticks[0][1])["ts"], "price": 1.07}
    produce(s, s.topic_ticks, ticks + [(b"EURUSD", orjson.dumps(late))])

    expected = (len(closes) - 1) - window  # the last hour stays open; a forecast needs W+1 closes
    got = consume(
        s,
        [s.topic_forecasts, s.topic_dead_letters],
        until=lambda g: len(g[s.topic_forecasts]) >= expected and g[s.topic_dead_letters],
        timeout=180,
    )
    fc = [v for _, v in got[s.topic_forecasts]]
    assert len(fc) == expected, run.log_text()[-3000:]
    starts = [v["bar_start"] for v in fc]
    assert len(set(starts)) == len(starts) and starts == sorted(starts)
    hour_ms = closes.index[window:-1].as_unit("ms").asi8
    assert starts == list(hour_ms)  # one forecast per closed bar, at that bar
    for v in fc:
        assert v["bar_s"] == 3600 and v["horizon_s"] == 3600 and v["bar_close_ts"] == v["bar_start"] + 3_600_000
        assert v["model"] == card.name and v["bar"]["count"] == 1
    # bands against the realised log return over the stated horizon (close to next close; quotes at the mid)
    c = closes.to_numpy()
    realised = np.log(c[window + 1 :] / c[window:-1])
    assert np.allclose([v["bar"]["close"] for v in fc], c[window:-1], rtol=0, atol=1e-12)
    lo, hi = np.array([v["band_95"] for v in fc]).T
    coverage = float(np.mean((realised >= lo) & (realised <= hi)))
    assert 0.93 <= coverage <= 0.97, coverage
    assert coverage == pytest.approx(card.metrics["coverage_95"], abs=2e-3)
    dead = [v for _, v in got[s.topic_dead_letters]]
    assert any("late tick" in d["reason"] for d in dead), dead


def test_worker_refuses_an_interval_without_a_model(stack):
    env = {
        **os.environ,
        "FINSTREAM_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FINSTREAM_REDIS_URL": stack.redis_url.get_secret_value(),
        "FINSTREAM_WORKER_WEB_ENABLED": "false",
        "FINSTREAM_MODEL_DIR": str(MODEL_DIR),
        "FINSTREAM_BAR_INTERVAL": "30m",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "no forecaster trained at 30m bars" in done.stderr and "Traceback" not in done.stderr


def test_scaling_fallback_serves_half_hour_bars_with_the_hourly_model(worker_run):
    """30m bars have no model of their own; with the fallback the 1h model serves them, fed returns
    divided by sqrt(k) and answering mean * k, sd * sqrt(k) (k = 1800 / 3600), and says so."""
    from stream.core.features import Standardiser, forecast_input
    from stream.serving.models import load_model

    manifest = read_manifest(MODEL_DIR)
    card = manifest.get(manifest.defaults["forecast@1h"])
    window = card.inputs[0].shape[1]
    closes = holdout_closes(window).iloc[: window + 6]
    run = worker_run(FINSTREAM_BAR_INTERVAL="30m", FINSTREAM_BAR_SCALING_FALLBACK="true").start()
    s = run.settings
    ticks = [
        (b"EURUSD", orjson.dumps({"v": 1, "symbol": "EURUSD", "ts": int(t.value // 1_000_000), "price": p}))
        for t, p in closes.items()
    ]  # one price per 30m bar (hours apart: gaps make no bar)
    produce(s, s.topic_ticks, ticks)
    expected = len(closes) - 1 - window
    got = consume(s, [s.topic_forecasts], until=lambda g: len(g[s.topic_forecasts]) >= expected, timeout=120)
    fc = [v for _, v in got[s.topic_forecasts]]
    assert len(fc) == expected, run.log_text()[-3000:]
    k = 0.5
    logp = np.log(closes.to_numpy()[: window + 1])
    scaled = np.exp((logp - logp[0]) / np.sqrt(k))[None, :]
    ref = load_model(card, MODEL_DIR).run(
        {"window": forecast_input(scaled, Standardiser.from_dict(card.normalisation["returns"]))}
    )[0][0]
    v = fc[0]
    assert v["bar_s"] == v["horizon_s"] == 1800 and v["scaled_from_bar_s"] == 3600 and v["model"] == card.name
    assert v["predicted_volatility"] == pytest.approx(float(ref[1]) * np.sqrt(k), rel=1e-6)
    assert v["predicted_return"] == pytest.approx(float(ref[0]) * k, rel=1e-6, abs=1e-12)
