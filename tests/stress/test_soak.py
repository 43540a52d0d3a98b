"""Soak: a long mixed stream with SIGKILLs at random points, compared with a clean run (issue 7).

Two isolated deployments get byte-identical input logs: ticks, transactions and user events,
busy keys (4 accounts, 4 users, each seeing hundreds of records between commits) beside a broad
population, producer resends (the same transaction bytes again at a later offset) and broken
records. Both run at batch size ``SOAK_BATCH_MAX``. One runs clean; the other is SIGKILLed ``SOAK_KILLS``
times, each when a random share of its outputs has been written, and restarted. Afterwards:

* the clean run gave exactly the outputs the input log implies (every input has its outputs);
* a read_committed consumer of the killed run sees each output once, byte for byte the clean run's;
* the Redis entity states (fence and state, output snapshots aside) and windows are the clean run's.

``make test`` runs a short version (``SOAK_EVENTS`` 6,000, 3 kills); ``make soak`` the full one
(100,000 events, 6 kills); both at the default batch of 500. Counts and timings are printed for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections import Counter

import orjson
import pytest
import redis

from stream.core.contracts import ContractError, decode  # noqa: E402
from stream.core.products import PRODUCT_INDEX  # noqa: E402
from stream.pipelines import PARSERS  # noqa: E402
from stream.tools import synthetic  # noqa: E402
from tests.integration.workers import WorkerRun, consume, entity_state, produce  # noqa: E402

pytestmark = pytest.mark.stress
EVENTS = int(os.environ.get("SOAK_EVENTS", "6000"))
KILLS = int(os.environ.get("SOAK_KILLS", "3"))
# A busy entity sees more records in one uncommitted batch than a fixed count of output snapshots
# would keep: snapshots are kept until their source offset is committed (stream.core.fencing).
BATCH_MAX = os.environ.get("SOAK_BATCH_MAX", "500")
BUSY_START = 946_684_800_000  # 2000-01-01: busy accounts run through years of history, all in the past


def _records(it, n, key):
    return [(r[key].encode(), orjson.dumps(r)) for r in itertools.islice(it, n)]


def _mix(busy: list, broad: list) -> list:
    """Three busy records, then one broad, each list in its own order."""
    out, b = [], iter(broad)
    for i, r in enumerate(busy):
        out.append(r)
        if i % 3 == 2:
            out.extend(itertools.islice(b, 1))
    return out + list(b)


def input_log(n: int) -> dict[str, list[tuple[bytes, bytes]]]:
    per = n // 3
    ticks = _records(synthetic.tick_stream(symbols=[f"SK-{i}" for i in range(6)], seed=11), per, "symbol")
    n_busy = per * 3 // 4  # 3 of 4 records on 4 busy entities: ~90 of each batch of 500 per entity
    busy = [
        {**r, "account_id": f"busy-{r['account_id']}"}
        for r in itertools.islice(synthetic.transaction_stream(n_accounts=4, seed=12, start_ms=BUSY_START), n_busy)
    ]
    broad = list(itertools.islice(synthetic.transaction_stream(n_accounts=400, seed=13), per - n_busy))
    txns = [(r["account_id"].encode(), orjson.dumps(r)) for r in _mix(busy, broad)]
    for i in range(len(txns) - 1, 0, -97):  # producer resends: the same bytes again, a little later
        txns.insert(min(i + 5, len(txns)), txns[i])
    txns = txns[:per]
    events = _mix(
        _records(synthetic.user_event_stream(n_users=4, seed=14, user_prefix="busy"), n_busy, "user_id"),
        _records(synthetic.user_event_stream(n_users=300, seed=15), per - n_busy, "user_id"),
    )
    log = {"ticks": ticks, "transactions": txns, "user-events": events}
    for recs in log.values():
        for j in range(len(recs) // 3, len(recs), max(1, len(recs) // 4)):
            recs.insert(j, (recs[j][0], b'{"broken'))
    return log


def expected(log) -> dict[str, int]:
    """Outputs per kind that the log must give, from the pure core's own contract."""
    valid = {}
    for kind, recs in log.items():
        ok = []
        for _, raw in recs:
            try:
                e = PARSERS[kind](decode(raw))
                if kind != "user-events" or e.product_id in PRODUCT_INDEX:
                    ok.append(e)
            except ContractError:
                pass
        valid[kind] = ok
    return {
        "risk-scores": len(valid["transactions"]),
        "recommendations": len(valid["user-events"]),
        "dead-letters": sum(len(log[k]) - len(valid[k]) for k in log),
    }


def run_topics(run: WorkerRun) -> dict[str, str]:
    s = run.settings
    return {
        "forecasts": s.topic_forecasts,
        "risk-scores": s.topic_risk_scores,
        "risk-alerts": s.topic_risk_alerts,
        "recommendations": s.topic_recommendations,
        "dead-letters": s.topic_dead_letters,
    }


def feed(run: WorkerRun, log, start: float = 0.0, stop: float = 1.0) -> None:
    """Produce the share [start, stop) of every input topic's log, in order (so offsets match)."""
    s = run.settings
    for topic, kind in zip(s.input_topics, ("ticks", "transactions", "user-events")):
        recs = log[kind]
        produce(s, topic, recs[int(start * len(recs)) : int(stop * len(recs))])


def outputs(run: WorkerRun, want: dict[str, int], timeout: float) -> list[tuple[str, str, bytes]]:
    """(kind, key, body) of every committed output once every kind has ``want`` and the forecasts
    (one per closed time bar, not known from the log alone) stop growing; topic tags removed."""
    names = run_topics(run)
    tag = run.settings.app_id.removeprefix("fs-test-")
    got = consume(
        run.settings,
        list(names.values()),
        timeout=timeout,
        until=lambda g: all(len(g[names[k]]) >= n for k, n in want.items()),
    )
    while True:  # settle: anything still in flight, so that "none twice" is checked on everything
        time.sleep(3)
        again = consume(run.settings, list(names.values()), timeout=10)
        if len(again[names["forecasts"]]) == len(got[names["forecasts"]]) and "forecasts" not in want:
            break
        got = again
        if "forecasts" in want and len(got[names["forecasts"]]) >= want["forecasts"]:
            break
    got = again
    norm = []
    for kind, topic in names.items():
        for key, value in got[topic]:
            norm.append(
                (
                    kind,
                    key.decode().replace(f"-{tag}:", ":"),
                    orjson.dumps(value, option=orjson.OPT_SORT_KEYS).replace(f"-{tag}".encode(), b""),
                )
            )
    return norm


async def _written(s, topics) -> int:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    c = AIOKafkaConsumer(**s.kafka_client_options())
    await c.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(s.topic_partitions)]
        return sum((await c.end_offsets(tps)).values())
    finally:
        await c.stop()


def kill_when_written(run: WorkerRun, target: int, timeout: float) -> int:
    """SIGKILL the worker once its output topics hold ``target`` records (committed or not)."""
    topics = list(run_topics(run).values())
    deadline = time.monotonic() + timeout
    while (n := asyncio.run(_written(run.settings, topics))) < target:
        assert run.proc.poll() is None, run.log_text()[-3000:]
        assert time.monotonic() < deadline, f"only {n} of {target} outputs written"
        time.sleep(0.3)
    run.kill()
    return n


def memory_per_kind(client: redis.Redis, prefix: str) -> dict[str, dict]:
    """Per key kind: keys, mean and max bytes (MEMORY USAGE), for docs/reliability.md."""
    sizes: dict[str, list[int]] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        sizes.setdefault(key.decode().split(":")[1], []).append(client.memory_usage(key, samples=0))
    return {k: {"keys": len(v), "mean": round(sum(v) / len(v)), "max": max(v)} for k, v in sizes.items()}


@pytest.mark.timeout(3600)
def test_soak_sigkills_at_random_points_give_the_clean_run(stack, tmp_path):
    log = input_log(EVENTS)
    want = expected(log)
    wait = 120 + EVENTS / 100
    common = {
        "FINSTREAM_KAFKA_SESSION_TIMEOUT_S": "6",
        "FINSTREAM_BAR_INTERVAL": "5s",
        "FINSTREAM_BAR_SCALING_FALLBACK": "true",
        "FINSTREAM_BATCH_MAX": BATCH_MAX,
    }
    t0 = time.monotonic()

    clean = WorkerRun(stack, tmp_path, **common)
    feed(clean, log)
    clean.start()
    clean_out = outputs(clean, want, wait)
    clean.stop()
    t_clean = time.monotonic() - t0
    by_kind = Counter(k for k, *_ in clean_out)
    assert {k: by_kind[k] for k in want} == want, "the clean run must give exactly what the log implies"
    assert by_kind["forecasts"] > 0
    want["forecasts"] = by_kind["forecasts"]  # the killed run must give the clean run's bars' forecasts
    assert len(clean_out) == len(set(clean_out))

    crashed = WorkerRun(stack, tmp_path, **common)
    total = sum(want.values()) + by_kind["risk-alerts"]
    rng = random.Random(EVENTS * 31 + KILLS)
    points = sorted(
        rng.uniform(0.05, 0.6) for _ in range(KILLS)
    )  # of outputs; the count also holds transaction markers
    # The log arrives in pieces, the next one after each restart: a restarted worker always has
    # input it has not seen, so a kill point is never past the end of a stream it already finished.
    shares = [min(1.0, f + 0.15) for f in points] + [1.0]
    feed(crashed, log, 0.0, shares[0])
    crashed.start()
    kills = []
    for i, f in enumerate(points):
        # a point already passed (a restart rewrites what was uncommitted) waits for new output instead
        kills.append(kill_when_written(crashed, max(int(f * total), kills[-1] + 1 if kills else 0), wait))
        feed(crashed, log, shares[i], shares[i + 1])
        crashed.start()
    crashed_out = outputs(crashed, want, wait)
    crashed.stop()
    t_all = time.monotonic() - t0
    log_text = crashed.log_text()
    print(
        f"\nsoak: {sum(len(v) for v in log.values())} inputs, outputs {dict(by_kind)}, kills after "
        f"{kills} of {total} outputs written, clean run {t_clean:.0f}s, all {t_all:.0f}s, "
        f"'cannot reproduce' dead letters in the killed run: {log_text.count('cannot reproduce')}"
    )

    assert len(kills) >= KILLS and all(0 < k < total for k in kills)
    twice = [o for o, n in Counter(crashed_out).items() if n > 1]
    assert not twice, (
        f"{len(twice)} outputs seen twice by a read_committed consumer, by kind "
        f"{dict(Counter(k for k, *_ in twice))}, e.g. {sorted(key for _, key, _ in twice)[:8]}"
    )
    assert sorted(crashed_out) == sorted(clean_out), "the killed run's outputs differ from the clean run's"
    client = redis.Redis.from_url(stack.redis_url.get_secret_value())
    print("memory per entity (Redis MEMORY USAGE, bytes):", memory_per_kind(client, clean.settings.redis_key_prefix))
    clean_state = entity_state(client, clean.settings.redis_key_prefix)
    assert clean_state, "state was written"
    assert entity_state(client, crashed.settings.redis_key_prefix) == clean_state
