"""SIGKILL the worker several times mid-stream, restart it, and compare with a clean run of the same log.

Two isolated deployments get byte-identical input logs (same keys, order, partitions, offsets).
One runs clean; the other is killed with SIGKILL several times while part-way through every input
topic and restarted each time. Both run on busy keys (4 accounts, 4 users, 4 symbols) at
a batch size of 40: the delivery path commits each batch, and an entity keeps its last 64 output
snapshots (``stream.core.fencing``), so a batch must not hold more records of one entity than that
(issue 7 item 2: snapshots kept until commit, which lifts this limit, is not merged yet; the
default batch of 500 with busy keys is the soak's case). Afterwards the entity states (fence and
state) and the committed outputs must be identical; under exactly-once a
read_committed consumer sees every output exactly once, under at-least-once repeats must have
happened and be byte-identical copies.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from workers import WorkerRun, entity_state, produce  # noqa: E402

from stream import synthetic  # noqa: E402

pytestmark = pytest.mark.stress
PER_TOPIC = 3000
TICKS = 12000           # the forecast job is the cheapest: more ticks keep it mid-stream at every kill
KILLS = {"exactly_once": (0.0, 0.04, 0.08), "at_least_once": (0.0, 0.04)}   # kill when every topic is past this


def input_log():
    """Ticks, transactions and user events on 4 busy entities each, plus one broken record per topic."""
    syms = [f"SYN-{i}" for i in range(4)]
    ticks = [(r["symbol"].encode(), orjson.dumps(r))
             for r in itertools.islice(synthetic.tick_stream(symbols=syms, seed=3), TICKS)]
    txns = [(r["account_id"].encode(), orjson.dumps(r))
            for r in itertools.islice(synthetic.transaction_stream(n_accounts=4, seed=5), PER_TOPIC)]
    events = [(r["user_id"].encode(), orjson.dumps(r))
              for r in itertools.islice(synthetic.user_event_stream(n_users=4, seed=9), PER_TOPIC)]
    for recs in (ticks, txns, events):
        recs.insert(len(recs) // 2, (recs[0][0], b"{broken"))
    return ticks, txns, events


def expected_counts(run: WorkerRun, log) -> dict[str, int]:
    """Outputs per topic that the input log must give, known before any worker runs (forecasts depend
    on which time bars close, so their count is the clean run's and the crashed run must match it)."""
    s = run.settings
    _, txns, events = log
    return {s.topic_risk_scores: len(txns) - 1, s.topic_recommendations: len(events) - 1,
            s.topic_dead_letters: 3}


def feed(run: WorkerRun, log) -> None:
    s = run.settings
    for topic, recs in zip(s.input_topics, log):
        produce(s, topic, recs)


async def _read(s, topics: list[str], done, timeout: float) -> dict[str, list]:
    """Everything on ``topics`` (read_committed) until ``done(distinct keys per topic)``; raises on the deadline."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(*topics, **s.kafka_client_options(), auto_offset_reset="earliest",
                         enable_auto_commit=False, isolation_level="read_committed")
    await c.start()
    got: dict[str, list] = {t: [] for t in topics}
    keys: dict[str, set] = {t: set() for t in topics}
    deadline = time.monotonic() + timeout
    try:
        while not done({t: len(v) for t, v in keys.items()}):
            if time.monotonic() > deadline:
                raise AssertionError(f"outputs incomplete after {timeout:.0f}s: { {t: len(v) for t, v in keys.items()} }")
            for tp, msgs in (await c.getmany(timeout_ms=300)).items():
                got[tp.topic] += [(m.key, m.value) for m in msgs]
                keys[tp.topic].update(m.key for m in msgs)
    finally:
        await c.stop()
    return got


def outputs(run: WorkerRun, want: dict[str, int], timeout: float = 150) -> list[tuple]:
    """The run's outputs once every topic has at least ``want`` (alerts: whatever came with them),
    normalised to what two deployments share (their topic names differ by a tag)."""
    s = run.settings
    topics = list(dict.fromkeys([*want, s.topic_risk_alerts, s.topic_forecasts]))
    got = asyncio.run(_read(s, topics, lambda n: all(n[t] >= c for t, c in want.items()), timeout))
    tag = s.app_id.removeprefix("fs-test-")
    norm = []
    for topic, recs in got.items():
        for key, value in recs:
            norm.append((topic.removesuffix(f"-{tag}"), key.decode().replace(f"-{tag}:", ":"),
                         value.replace(f"-{tag}".encode(), b"")))
    return norm


class Progress:
    """The worker group's committed offsets and the end offsets of its input topics (clients kept open,
    so polling is quick enough to catch the stream part-way)."""

    def __init__(self, s):
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self.s = s
        self.admin = AIOKafkaAdminClient(**s.kafka_client_options())
        self.consumer = AIOKafkaConsumer(*s.input_topics, **s.kafka_client_options())  # no group: metadata only

    async def __aenter__(self):
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc):
        await self.consumer.stop()
        await self.admin.close()

    async def read(self) -> dict:
        """Per input topic (committed, end) summed over partitions; committed per (topic, partition)."""
        from aiokafka.structs import TopicPartition

        from aiokafka.errors import GroupCoordinatorNotAvailableError

        try:
            committed = await self.admin.list_consumer_group_offsets(self.s.app_id)
        except GroupCoordinatorNotAvailableError:   # the worker's group is not there yet: nothing committed
            committed = {}
        out = {"topics": {}, "_by_partition": {(tp.topic, tp.partition): m.offset for tp, m in committed.items()}}
        for topic in self.s.input_topics:
            tps = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
            assert tps, f"no partitions known for {topic}"
            ends = await self.consumer.end_offsets(tps)
            done = sum(committed[tp].offset for tp in tps if tp in committed and committed[tp].offset >= 0)
            out["topics"][topic] = (done, sum(ends.values()))
        return out


def uncommitted_backlog(run: WorkerRun, client: redis.Redis, prog: dict) -> int:
    """The most records any card or account has applied in Redis beyond its partition's committed offset:
    what a restart must reproduce from that account's output snapshots."""
    s = run.settings
    committed = prog["_by_partition"]
    worst = 0
    # the served risk model decides the entity kind: per card (real-data model) or per account (synthetic)
    keys = itertools.chain(client.scan_iter(match=f"{s.redis_key_prefix}:card:*", count=1000),
                           client.scan_iter(match=f"{s.redis_key_prefix}:acct:*", count=1000))
    for key in keys:
        fence = client.hget(key, "fence")
        if fence:
            part, off = (int(x) for x in fence.split(b":"))
            worst = max(worst, off + 1 - committed.get((s.topic_transactions, part), 0))
    return worst


def kill_mid_stream(run: WorkerRun, client: redis.Redis, fraction: float, backlog: int, timeout: float = 120) -> dict:
    """Wait until every input topic is at least ``fraction`` committed and a busy account has at least
    ``backlog`` applied but uncommitted records, freeze the worker, check that this still holds and that
    every topic still has uncommitted input (the kill lands mid-stream everywhere), SIGKILL it."""
    return asyncio.run(_kill_mid_stream(run, client, fraction, backlog, timeout))


async def _kill_mid_stream(run, client, fraction, backlog, timeout) -> dict:
    deadline = time.monotonic() + timeout
    async with Progress(run.settings) as progress:
        while True:
            prog = await progress.read()
            if all(done > fraction * end for done, end in prog["topics"].values()) \
                    and uncommitted_backlog(run, client, prog) >= backlog:
                os.killpg(run.proc.pid, signal.SIGSTOP)  # frozen: what is committed now is what the kill leaves
                prog = await progress.read()
                if uncommitted_backlog(run, client, prog) >= backlog:
                    break
                os.killpg(run.proc.pid, signal.SIGCONT)
            text = run.log_text()
            assert run.proc.poll() is None, text[-3000:]
            assert "cannot reproduce" not in text, "a redelivered record could not be reproduced after a kill"
            assert time.monotonic() < deadline, f"no kill point at {fraction:.0%} within {timeout:.0f}s: {prog['topics']}"
            await asyncio.sleep(0.05)
    run.kill()
    for topic, (done, end) in prog["topics"].items():
        assert 0 < done < end, f"kill at {fraction:.0%} not mid-stream on {topic}: committed {done} of {end}"
    return prog


def wait_all_committed(run: WorkerRun, timeout: float = 240) -> None:
    """Until the worker group has committed every input record: only then are the run's outputs and
    state final (a tick in an open bar, or the last records of a partition, leave no output to wait for)."""
    async def wait():
        deadline = time.monotonic() + timeout
        async with Progress(run.settings) as progress:
            while True:
                prog = await progress.read()
                if all(done == end for done, end in prog["topics"].values()):
                    return
                assert run.proc.poll() is None, run.log_text()[-3000:]
                assert time.monotonic() < deadline, f"input not committed within {timeout:.0f}s: {prog['topics']}"
                await asyncio.sleep(0.2)
    asyncio.run(wait())




@pytest.mark.timeout(300)
@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_sigkills_mid_stream_give_the_clean_run_state_and_outputs(stack, tmp_path, guarantee):
    log = input_log()
    common = {"FINSTREAM_PROCESSING_GUARANTEE": guarantee, "FINSTREAM_KAFKA_SESSION_TIMEOUT_S": "6",
              "FINSTREAM_BATCH_MAX": "40", "FINSTREAM_COMMIT_INTERVAL_MS": "200"}

    clean = WorkerRun(stack, tmp_path, **common)
    crashed = WorkerRun(stack, tmp_path, **common)
    try:
        want = expected_counts(clean, log)
        feed(clean, log)
        clean.start()
        wait_all_committed(clean)
        clean_out = outputs(clean, want)
        clean.stop()
        clean_by_topic = Counter(t for t, *_ in clean_out)
        tag_free = {t.removesuffix(f"-{clean.settings.app_id.removeprefix('fs-test-')}"): c for t, c in want.items()}
        for topic, n in tag_free.items():
            assert clean_by_topic[topic] == n, (topic, clean_by_topic)   # exact: nothing missing, nothing twice
        assert len(clean_out) == len(set(clean_out))

        client = redis.Redis.from_url(stack.redis_url.get_secret_value())
        feed(crashed, log)
        crashed.start()
        for fraction in KILLS[guarantee]:
            kill_mid_stream(crashed, client, fraction, backlog=0)
            crashed.start()
        crashed_want = {t.replace(clean.settings.app_id.removeprefix("fs-test-"), crashed.settings.app_id.removeprefix("fs-test-")): n
                        for t, n in want.items()}
        crashed_want[crashed.settings.topic_risk_alerts] = clean_by_topic["risk-alerts"]
        crashed_want[crashed.settings.topic_forecasts] = clean_by_topic["forecasts"]
        wait_all_committed(crashed)
        crashed_out = outputs(crashed, crashed_want)
        crashed.stop()
        log_text = crashed.log_text()
        assert "cannot reproduce" not in log_text
    finally:   # a failed assertion must not leave a worker behind
        clean.stop()
        crashed.stop()

    if guarantee == "exactly_once":
        # read_committed consumers: no duplicate, nothing missing, same bytes
        assert len(crashed_out) == len(set(crashed_out)), "duplicates visible after the crash"
        assert sorted(crashed_out) == sorted(clean_out)
    else:
        # redelivered outputs repeat byte for byte under the same key: dropping repeats gives the clean run
        by_key: dict[tuple, set] = {}
        for topic, key, value in crashed_out:
            by_key.setdefault((topic, key), set()).add(value)
        assert all(len(v) == 1 for v in by_key.values()), "a repeated output differs from its first copy"
        repeats = len(crashed_out) - len(set(crashed_out))
        assert repeats > 0, "the kills caused no redelivery: the test did not exercise at-least-once"
        assert set(crashed_out) == set(clean_out)

    clean_state = entity_state(client, clean.settings.redis_key_prefix)
    assert clean_state, "state was written"
    assert entity_state(client, crashed.settings.redis_key_prefix) == clean_state
