"""SIGKILL the worker mid-stream, restart it, and compare with a clean run of the same input log.

Two isolated deployments get byte-identical input logs (same keys, order, partitions, offsets).
One runs clean; the other is killed with SIGKILL while it is part-way through and restarted.
Afterwards their Redis state and their committed outputs must be identical, and under
exactly-once a read_committed consumer must see every output exactly once.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from workers import WorkerRun, consume, produce  # noqa: E402

from stream.replay import read_csv, rows_to_records  # noqa: E402
from stream.settings import REPO_ROOT  # noqa: E402
from stream.synthetic import generate_transactions, strip_labels  # noqa: E402

pytestmark = pytest.mark.stress
DATA = REPO_ROOT / "stream" / "data"


def input_log():
    rows = list(read_csv(DATA / "sp500.csv"))
    ticks = list(rows_to_records(rows[:220], "ticks", {"ts": "Date", "price": "Close"}, "SPX"))
    ticks += list(rows_to_records(rows[300:520], "ticks", {"ts": "Date", "price": "Close"}, "NDX"))
    ticks.append((b"SPX", b"{broken"))
    txns = [(t["account_id"].encode(), orjson.dumps(t))
            for t in strip_labels(generate_transactions(n_accounts=60, days=4, fraud_rate=0.1, seed=5))[:700]]
    events = list(rows_to_records(list(read_csv(DATA / "caravan_events.csv"))[:400], "user-events", {}, None))
    return ticks, txns, events


def feed(run: WorkerRun, log) -> None:
    s = run.settings
    ticks, txns, events = log
    produce(s, s.topic_ticks, ticks)
    produce(s, s.topic_transactions, txns)
    produce(s, s.topic_user_events, events)


def outputs(run: WorkerRun, expected_scores: int, expected_recs: int, timeout: float):
    s = run.settings
    topics = [s.topic_forecasts, s.topic_risk_alerts, s.topic_risk_scores, s.topic_recommendations, s.topic_dead_letters]
    got = consume(s, topics, until=lambda g: len(g[s.topic_risk_scores]) >= expected_scores
                  and len(g[s.topic_recommendations]) >= expected_recs and g[s.topic_dead_letters], timeout=timeout)
    # settle: read again briefly so that nothing still in flight is missed
    time.sleep(2)
    got = consume(s, topics, timeout=5)
    tag = s.app_id.removeprefix("fs-test-")
    norm = []
    for topic, recs in got.items():
        kind = topic.removesuffix(f"-{tag}")
        for key, value in recs:   # the deployments differ only in their topic names: take those out
            body = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).replace(f"-{tag}".encode(), b"")
            norm.append((kind, key.decode().replace(f"-{tag}:", ":"), body))
    return norm


def redis_state(client: redis.Redis, prefix: str) -> dict:
    out = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        k = key.decode().removeprefix(prefix)
        t = client.type(key)
        out[k] = client.get(key) if t == b"string" else client.hgetall(key)
    return out


@pytest.mark.timeout(900)
@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_sigkill_mid_stream_gives_the_clean_run_state_and_outputs(stack, tmp_path, guarantee):
    log = input_log()
    n_scores, n_recs = len(log[1]), len(log[2])
    # at-least-once: Faust commits every 200 ms (default 2.8 s), so the stretch a kill makes repeat stays
    # within the 64 output snapshots an entity keeps; a daily-bar symbol here has 220 ticks (issue 7 item 2)
    common = {"FINSTREAM_BATCH_MAX": "40", "FINSTREAM_PROCESSING_GUARANTEE": guarantee,
              "FINSTREAM_COMMIT_INTERVAL_MS": "200"}

    clean = WorkerRun(stack, tmp_path, **common)
    feed(clean, log)
    clean.start()
    clean_out = outputs(clean, n_scores, n_recs, timeout=240)
    clean.stop()

    crashed = WorkerRun(stack, tmp_path, **common)
    feed(crashed, log)
    crashed.start()
    s = crashed.settings
    # wait until it is part-way through, then kill it without warning
    seen = consume(s, [s.topic_risk_scores, s.topic_forecasts],
                   until=lambda g: len(g[s.topic_risk_scores]) + len(g[s.topic_forecasts]) >= 150,
                   timeout=120, committed=False)
    partial = len(seen[s.topic_risk_scores]) + len(seen[s.topic_forecasts])
    crashed.kill()
    assert 0 < partial < n_scores + 400, "the kill must land mid-stream"
    crashed.start()
    crashed_out = outputs(crashed, n_scores, n_recs, timeout=240)
    crashed.stop()

    assert len(clean_out) == len(set(clean_out))
    if guarantee == "exactly_once":
        # read_committed consumers: no duplicate, nothing missing, same bytes
        assert len(crashed_out) == len(set(crashed_out)), "duplicates visible after the crash"
        assert sorted(crashed_out) == sorted(clean_out)
    else:
        # redelivered outputs repeat byte for byte under the same key: dropping repeats gives the clean run
        assert set(crashed_out) == set(clean_out)
    assert sum(1 for k, *_ in clean_out if k == "risk-scores") == n_scores

    client = redis.Redis.from_url(stack.redis_url.get_secret_value())
    assert redis_state(client, crashed.settings.redis_key_prefix) == redis_state(client, clean.settings.redis_key_prefix)
    assert redis_state(client, clean.settings.redis_key_prefix), "state was written"
