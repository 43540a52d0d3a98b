"""Killing a worker at chosen points of a run, and knowing it landed there.

The kill test (test_kill_restart.py) needs a kill that provably lands mid-stream: every input topic
part-way committed, a busy card or account with records applied in Redis beyond its partition's
committed offset, and (at-least-once) an output already published for an uncommitted input. These
read the worker group's committed offsets and the topics' end offsets from the real broker, freeze
the worker (SIGSTOP) to check the point still holds, and only then SIGKILL it; ``CommitWatch``
checks that committed offsets never move back over a whole run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time

import redis

from stream.state.entities import read_stored
from tests.integration.workers import WorkerRun


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
        from aiokafka.errors import GroupCoordinatorNotAvailableError
        from aiokafka.structs import TopicPartition

        try:
            committed = await self.admin.list_consumer_group_offsets(self.s.app_id)
        except GroupCoordinatorNotAvailableError:  # the worker's group is not there yet: nothing committed
            committed = {}
        out = {"topics": {}, "_by_partition": {(tp.topic, tp.partition): m.offset for tp, m in committed.items()}}
        for topic in self.s.input_topics:
            tps = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
            assert tps, f"no partitions known for {topic}"
            ends = await self.consumer.end_offsets(tps)
            done = sum(committed[tp].offset for tp in tps if tp in committed and committed[tp].offset >= 0)
            out["topics"][topic] = (done, sum(ends.values()))
        return out

    async def published(self, topic: str) -> int:
        """Records in an output topic (its end offsets summed: at-least-once writes no markers)."""
        from aiokafka.structs import TopicPartition

        (meta,) = await self.admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition"]) for p in meta["partitions"]]
        assert tps, f"no partitions known for {topic}"
        return sum((await self.consumer.end_offsets(tps)).values())


def uncommitted_backlog(run: WorkerRun, client: redis.Redis, prog: dict) -> int:
    """The most records any one card or account has applied in Redis at or beyond its partition's
    committed offset (its output snapshots there): what a restart must reproduce from that entity's
    snapshots alone."""
    s = run.settings
    committed = prog["_by_partition"]
    worst = 0
    # the served risk model decides the entity kind: per card (real-data model) or per account (synthetic)
    keys = itertools.chain(
        client.scan_iter(match=f"{s.redis_key_prefix}:card:*", count=1000),
        client.scan_iter(match=f"{s.redis_key_prefix}:acct:*", count=1000),
    )
    for key in keys:
        fields = client.hgetall(key)
        if fields.get(b"fence"):
            part = int(fields[b"fence"].split(b":")[0])
            floor = committed.get((s.topic_transactions, part), 0)
            worst = max(worst, sum(o >= floor for o in read_stored(fields)))  # its snapshot chunks
    return worst


def kill_mid_stream(
    run: WorkerRun,
    client: redis.Redis,
    fraction: float,
    backlog: int,
    after: int = 0,
    timeout: float = 120,
    published_ahead: bool = False,
) -> dict:
    """Wait until every input topic is at least ``fraction`` committed, more than ``after`` records are
    committed in all (progress since the previous kill), a busy card or account has at least
    ``backlog`` applied but uncommitted records, freeze the worker, check that this still holds and that
    every topic still has uncommitted input (the kill lands mid-stream everywhere), SIGKILL it.
    ``published_ahead``: also wait until the risk scores topic holds more records than the committed
    transactions can account for (one score per transaction at most), i.e. some output of an
    uncommitted input is already published: under at-least-once its redelivery must repeat it."""
    return asyncio.run(_kill_mid_stream(run, client, fraction, backlog, after, timeout, published_ahead))


def point(prog: dict, fraction: float, after: int) -> bool:
    """A kill point: every topic past ``fraction`` and not finished, more than ``after`` committed in all."""
    topics = prog["topics"].values()
    return all(fraction * end < done < end for done, end in topics) and sum(done for done, _ in topics) > after


async def _kill_mid_stream(run, client, fraction, backlog, after, timeout, published_ahead) -> dict:
    deadline = time.monotonic() + timeout
    scores = run.settings.topic_risk_scores

    async def ahead(prog) -> bool:
        return (
            not published_ahead or await progress.published(scores) > prog["topics"][run.settings.topic_transactions][0]
        )

    async with Progress(run.settings) as progress:
        while True:
            prog = await progress.read()
            if point(prog, fraction, after) and uncommitted_backlog(run, client, prog) >= backlog:
                os.killpg(run.proc.pid, signal.SIGSTOP)  # frozen: what is committed now is what the kill leaves
                prog = await progress.read()
                prog["backlog"] = uncommitted_backlog(run, client, prog)
                if point(prog, fraction, after) and prog["backlog"] >= backlog and await ahead(prog):
                    break
                os.killpg(run.proc.pid, signal.SIGCONT)
            text = run.log_text()
            assert run.proc.poll() is None, text[-3000:]
            assert "cannot reproduce" not in text, "a redelivered record could not be reproduced after a kill"
            assert time.monotonic() < deadline, (
                f"no kill point at {fraction:.0%} within {timeout:.0f}s: {prog['topics']}"
            )
            await asyncio.sleep(0.05)
    run.kill()
    for topic, (done, end) in prog["topics"].items():  # (the end grows while the paced feed runs)
        assert 0 < done < end, f"kill at {fraction:.0%} not mid-stream on {topic}: committed {done} of {end}"
    return prog


def kill_in_flight(run: WorkerRun, client: redis.Redis, backlog: int, timeout: float = 150) -> dict:
    """Kill the worker while a busy card or account has at least ``backlog`` records applied in Redis
    whose offsets are not committed in Kafka (a batch between its Redis save and its Kafka commit).
    Called right after the worker starts on a pre-fed head. The worker is frozen (SIGSTOP) every few
    milliseconds for a cheap look at the Redis fences against the committed offsets last seen (read
    concurrently, so possibly behind); when that shows the backlog, the committed offsets are read
    again while it is frozen, after in-flight requests have landed, and only then is it killed."""
    return asyncio.run(_kill_in_flight(run, client, backlog, timeout))


async def _kill_in_flight(run, client, backlog, timeout) -> dict:
    deadline, latest = time.monotonic() + timeout, {"_by_partition": {}}

    async def refresh(progress):
        while True:
            latest.update(await progress.read())

    async with Progress(run.settings) as background, Progress(run.settings) as exact:
        refresher = asyncio.create_task(refresh(background))
        try:
            while True:
                assert run.proc.poll() is None, run.log_text()[-3000:]
                os.killpg(run.proc.pid, signal.SIGSTOP)
                if uncommitted_backlog(run, client, latest) >= backlog:
                    await asyncio.sleep(0.3)  # a commit request sent just before the freeze lands meanwhile
                    prog = await exact.read()
                    prog["backlog"] = uncommitted_backlog(run, client, prog)
                    if prog["backlog"] >= backlog:
                        break
                os.killpg(run.proc.pid, signal.SIGCONT)
                done, end = latest.get("topics", {}).get(run.settings.topic_transactions, (0, 1))
                assert done < end and time.monotonic() < deadline, (
                    f"no kill point with a backlog of {backlog} ({done} of {end} transactions committed)"
                )
                await asyncio.sleep(0.01)
        finally:
            refresher.cancel()
    run.kill()
    return prog


class CommitWatch(threading.Thread):
    """Samples the worker group's committed offsets all through a run: they must never move back.
    A commit landing behind an earlier one (e.g. Faust committing acked offsets after our transaction
    committed further) is what makes a kill redeliver outputs that were already committed."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s, self.stopping, self.samples, self.regressions = s, threading.Event(), 0, []

    def run(self):
        asyncio.run(self._watch())

    async def _watch(self):
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**self.s.kafka_client_options())
        await admin.start()
        last: dict = {}
        try:
            while not self.stopping.is_set():
                try:
                    now = await admin.list_consumer_group_offsets(self.s.app_id)
                except Exception:  # group not there yet, coordinator moving after a kill
                    await asyncio.sleep(0.05)
                    continue
                self.samples += 1
                for tp, meta in now.items():
                    if meta.offset >= 0 and meta.offset < last.get(tp, -1):
                        self.regressions.append((tp.topic, tp.partition, last[tp], meta.offset))
                    last[tp] = max(meta.offset, last.get(tp, -1))
                await asyncio.sleep(0.01)
        finally:
            await admin.close()

    def finish(self) -> list:
        self.stopping.set()
        self.join(timeout=30)
        return self.regressions


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
