"""``finstream backtest --compare`` against a live worker on the real stack: the bundled S&P 500
replay gives zero divergence, from the CSV and from the input topic itself; one altered price is
reported at the first forecast it reaches."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import orjson

from stream.settings import REPO_ROOT
from tests.integration.workers import consume, entity_state

SP500 = REPO_ROOT / "stream" / "data" / "sp500.csv"
TICK_ARGS = ["--kind", "ticks", "--map", "ts=Date", "--map", "price=Close", "--symbol", "SPX"]


def finstream(run, *args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=run.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def compare_forecasts(run, out: Path, *source: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """``finstream backtest --compare forecasts`` of ``source`` (a CSV's ticks, or the input topic)
    into ``out``, and the comparison report it wrote (None if it wrote none)."""
    done = finstream(run, "backtest", *source, "--out", str(out), "--compare", "forecasts", cwd=out.parent)
    report = out / f"compare-{run.settings.topic_forecasts}.json"
    return done, orjson.loads(report.read_bytes()) if report.exists() else None


def test_backtest_has_zero_divergence_from_the_live_worker_and_finds_an_altered_price(
    worker_run, redis_client, tmp_path
):
    run = worker_run().start()
    s = run.settings
    replayed = finstream(run, "replay", *TICK_ARGS, "--input", str(SP500), cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr

    clean = finstream(
        run, "backtest", *TICK_ARGS, "--input", str(SP500), "--out", str(tmp_path / "clean"), cwd=tmp_path
    )
    assert clean.returncode == 0, clean.stderr
    expected = len((tmp_path / "clean" / f"{s.topic_forecasts}.jsonl").read_bytes().splitlines())
    assert expected == 5031 - 33  # every tick after the first full window of bars
    live = consume(s, [s.topic_forecasts], until=lambda g: len(g[s.topic_forecasts]) >= expected, timeout=120)
    assert len(live[s.topic_forecasts]) == expected, run.log_text()[-3000:]

    same, report = compare_forecasts(run, tmp_path / "same", *TICK_ARGS, "--input", str(SP500))
    assert same.returncode == 0, same.stderr
    assert report["compared"] == report["live_records"] == report["backtest_records"] == expected
    assert report["differing"] == 0 and report["first_divergence"] is None and "zero divergence" in same.stderr

    # the state the live worker left in Redis is the state the backtest left in process
    from stream.state.memory import MemoryState
    from stream.tools import backtest as bt
    from stream.tools.replay import read_csv, rows_to_records

    memory = MemoryState(s.redis_key_prefix)
    pairs = rows_to_records(read_csv(SP500), "ticks", {"ts": "Date", "price": "Close"}, "SPX")
    bt.backtest(s, s.topic_ticks, bt.source_records(s.topic_ticks, pairs, s.topic_partitions), state=memory)
    assert memory.live_keys() == [f"{s.redis_key_prefix}:bar:{{SPX}}"]
    assert entity_state(redis_client, s.redis_key_prefix) == {
        k.removeprefix(s.redis_key_prefix): (fence, orjson.loads(blob)["s"])
        for k in memory.live_keys()
        for fence, blob in [memory.raw(k)]
    }

    # the input topic itself, real positions
    from_topic, report = compare_forecasts(run, tmp_path / "topic", "--kind", "ticks")
    assert from_topic.returncode == 0, from_topic.stderr
    assert report["compared"] == expected and report["differing"] == 0

    rows = list(csv.DictReader(SP500.read_text().splitlines()))
    rows[100]["Close"] = f"{float(rows[100]['Close']) * 1.01:.4f}"  # one close, 1% off
    altered = tmp_path / "altered.csv"
    with open(altered, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    diff, first = compare_forecasts(run, tmp_path / "diff", *TICK_ARGS, "--input", str(altered))
    assert diff.returncode == 1, diff.stderr
    # tick 101 closes the altered bar 100: that forecast (index 101 - 33) is the first to differ, and
    # each of the next 32 windows of 33 closes still holds it
    assert first["first_divergence"]["index"] == 101 - 33
    assert first["first_divergence"]["key"].endswith(":101") and first["first_divergence"]["field"] == "bar.open"
    assert first["differing"] == 33 and "first divergence" in diff.stderr
