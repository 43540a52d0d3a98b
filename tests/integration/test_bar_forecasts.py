"""A real hourly quote feed through the real worker: one forecast per closed 1h bar, horizon 3600 s."""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pandas as pd

from stream.core.manifest import read_manifest
from stream.replay import parse_mappings, rows_to_records
from stream.settings import REPO_ROOT
from training.data.market import _eurusd

from workers import MODEL_DIR, consume, produce

HOURS = 60


def interbank_rows(hours: int) -> list[dict]:
    """EUR/USD hours as an interbank quote file would give them: yyyymmddhhmm stamps, bid/ask only.
    Two quotes per hour (at :00 the open, at :59 the close), half a pip either side of the real price."""
    rows = []
    for t, bar in _eurusd().iloc[:hours].iterrows():
        for stamp, price in ((t, bar["Open"]), (t + pd.Timedelta(minutes=59), bar["Close"])):
            rows.append({"pair": "EURUSD", "time": stamp.strftime("%Y%m%d%H%M"),
                         "bid": f"{price - 0.00005:.5f}", "ask": f"{price + 0.00005:.5f}"})
    return rows


def test_hourly_quotes_give_one_forecast_per_closed_bar(worker_run):
    run = worker_run(FINSTREAM_BAR_INTERVAL="1d", FINSTREAM_BAR_INTERVALS="EURUSD=1h").start()
    s = run.settings
    rows = interbank_rows(HOURS)
    ticks = list(rows_to_records(rows, "ticks", parse_mappings(["symbol=pair", "ts=time"], "ticks"), None,
                                 "%Y%m%d%H%M"))
    late = {"v": 1, "symbol": "EURUSD", "ts": orjson.loads(ticks[0][1])["ts"], "price": 1.07}
    produce(s, s.topic_ticks, ticks + [(b"EURUSD", orjson.dumps(late))])

    manifest = read_manifest(MODEL_DIR)
    card = manifest.get(manifest.defaults["forecast@1h"])
    window = card.inputs[0].shape[1]
    closed = HOURS - 1                       # the last hour stays open: no later quote closed it
    expected = closed - window               # a forecast needs W+1 closes
    got = consume(s, [s.topic_forecasts, s.topic_dead_letters],
                  until=lambda g: len(g[s.topic_forecasts]) >= expected and g[s.topic_dead_letters], timeout=120)
    fc = [v for _, v in got[s.topic_forecasts]]
    assert len(fc) == expected, run.log_text()[-3000:]
    starts = [v["bar_start"] for v in fc]
    assert len(set(starts)) == len(starts) == expected and starts == sorted(starts)
    for v in fc:
        assert v["bar_s"] == 3600 and v["horizon_s"] == 3600 and v["bar_close_ts"] == v["bar_start"] + 3_600_000
        assert v["model"] == card.name and card.extra["bar_s"] == 3600 and v["bar"]["count"] == 2
        lo, hi = v["band_95"]
        assert lo < v["predicted_return"] < hi and 0 < v["predicted_volatility"] < 0.01
    # the forecast made at the close of hour k was published by hour k+1's first quote, priced at the mid
    first_hour = _eurusd().iloc[window]
    assert abs(fc[0]["bar"]["close"] - first_hour["Close"]) < 1e-9
    dead = [v for _, v in got[s.topic_dead_letters]]
    assert any("late tick" in d["reason"] for d in dead), dead


def test_worker_refuses_an_interval_without_a_model(stack):
    env = {**os.environ, "FINSTREAM_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
           "FINSTREAM_REDIS_URL": stack.redis_url.get_secret_value(), "FINSTREAM_WORKER_WEB_ENABLED": "false",
           "FINSTREAM_MODEL_DIR": str(MODEL_DIR), "FINSTREAM_BAR_INTERVAL": "30m"}
    done = subprocess.run([sys.executable, "-m", "stream.cli", "worker"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "no forecaster trained at 30m bars" in done.stderr and "Traceback" not in done.stderr
