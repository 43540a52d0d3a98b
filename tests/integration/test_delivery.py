"""stream.delivery against the real broker: a partition's transaction stays open across batches
under load and commits on the interval, or at once when the partition is drained; what is not
committed is invisible to read_committed consumers and not counted as committed."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.core.records import OutputRecord, SourceRecord
from tests.integration.test_kafka_redis import _consume_all, publisher_settings, source_topic_with_records


def batches(src: str, out: str, n_batches: int, size: int) -> list[tuple[list, list]]:
    got = []
    for b in range(n_batches):
        batch = [SourceRecord(src, 0, b * size + i, None, b"") for i in range(size)]
        got.append((batch, [OutputRecord(out, r.source_id.encode(), b"o-" + r.source_id.encode(), 0) for r in batch]))
    return got


def one_partition_topics(stack, unique_topic, **settings):
    """A fresh one-partition source and output topic, and exactly-once publisher settings on them
    with ``settings`` changed: every test here starts from these."""
    src, out = unique_topic("src"), unique_topic("out")
    s = publisher_settings(stack, "exactly_once", 1).model_copy(update=settings)
    source_topic_with_records(stack, src, 1, 0)
    source_topic_with_records(stack, out, 1, 0)
    return src, out, s


async def group_offset(s, topic: str) -> int | None:
    c = AIOKafkaConsumer(**s.kafka_client_options(), group_id=s.app_id, enable_auto_commit=False)
    await c.start()
    try:
        return await c.committed(TopicPartition(topic, 0))
    finally:
        await c.stop()


async def settled_group_offset(s, topic: str, want: int, timeout: float = 15) -> int | None:
    """The group's offset once it reads ``want`` (a commit's markers land just after the commit
    returns), or what it reads after ``timeout``."""
    deadline = time.monotonic() + timeout
    got = await group_offset(s, topic)
    while got != want and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        got = await group_offset(s, topic)
    return got


def test_transaction_spans_batches_until_the_interval_then_commits_them_together(stack, unique_topic):
    from stream.delivery import Delivery

    src, out, s = one_partition_topics(stack, unique_topic, commit_interval_ms=3000)

    async def run():
        durable_at: list[float] = []
        d = Delivery(s, drained=lambda tp, nxt: False)  # under load: never drained
        try:
            t0 = time.monotonic()
            for batch, outputs in batches(src, out, 3, 5):
                units = d.plan(batch, outputs)
                for u in units:
                    u.on_durable = lambda commit_s: durable_at.append(time.monotonic() - t0)
                await d.submit(units)
            await asyncio.sleep(1.0)
            # one open transaction holds all three batches: nothing visible, nothing committed yet
            mid_visible = await _consume_all(stack, out, 15, isolation="read_committed", timeout=1)
            mid = (d.committed(src, 0), await group_offset(s, src), list(durable_at))
            deadline = time.monotonic() + 30
            while len(durable_at) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            end = (d.committed(src, 0), await settled_group_offset(s, src, 15), list(durable_at))
        finally:
            await d.close()
        return mid_visible, mid, end, await _consume_all(stack, out, 15, isolation="read_committed")

    mid_visible, mid, end, got = asyncio.run(run())
    assert mid_visible == [] and mid == (None, None, [])
    committed, group, durable_at = end
    assert committed == 15 and group == 15
    assert len(durable_at) == 3 and max(durable_at) - min(durable_at) < 0.5  # one commit for all three
    assert min(durable_at) >= 2.5  # held for the interval
    assert sorted(r.value for r in got) == sorted(f"o-{src}:0:{i}".encode() for i in range(15))


def test_a_drained_partition_commits_at_once(stack, unique_topic):
    from stream.delivery import Delivery

    src, out, s = one_partition_topics(stack, unique_topic, commit_interval_ms=30000)

    async def run():
        d = Delivery(s, drained=lambda tp, nxt: True)
        try:
            [(batch, outputs)] = batches(src, out, 1, 4)
            t0 = time.monotonic()
            await d.submit(d.plan(batch, outputs))
            deadline = t0 + 20
            while (d.committed(src, 0) or 0) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            took = time.monotonic() - t0
        finally:
            await d.close()
        return took, await settled_group_offset(s, src, 4)

    took, group = asyncio.run(run())
    assert group == 4
    assert took < 15, f"a drained partition waited {took:.1f}s for its commit (interval 30 s)"


def test_alternating_producers_keep_source_order_and_commit_in_order(stack, unique_topic):
    """Many small drained batches: transactions alternate between the lane's two producers (the
    next one's sends overlap the previous commit), yet outputs stay in source order in the output
    partition and every batch is durable in order with the group offset at the end."""
    from stream.delivery import Delivery

    src, out, s = one_partition_topics(stack, unique_topic, commit_interval_ms=30000, delivery_producers=2)

    async def run():
        durable: list[int] = []
        d = Delivery(s, drained=lambda tp, nxt: True)
        try:
            for batch, outputs in batches(src, out, 20, 5):
                units = d.plan(batch, outputs)
                for u in units:
                    u.on_durable = lambda commit_s, nxt=u.next_offset: durable.append(nxt)
                await d.submit(units)
                await asyncio.sleep(0.005)  # a paced source: the lane sees a drained partition often
            deadline = time.monotonic() + 60
            while len(durable) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            lane = d._lanes[TopicPartition(src, 0)]
            producers = [p._txn_manager.transactional_id for p in lane.producers if p is not None]
            commits = sum(d.commits.values())
        finally:
            await d.close()
        return durable, producers, commits, await settled_group_offset(s, src, 100)

    durable, producers, commits, group = asyncio.run(run())
    got = asyncio.run(_consume_all(stack, out, 100, isolation="read_committed"))
    assert durable == [5 * (i + 1) for i in range(20)]  # on_durable in source order, each batch once
    assert group == 100
    assert producers == [f"{s.app_id}-{src}-0", f"{s.app_id}-{src}-0-1"]
    assert commits >= 2  # more than one transaction, so both producers took turns
    assert [r.value for r in got] == [f"o-{src}:0:{i}".encode() for i in range(100)]  # source order


def test_a_new_owner_fences_both_producers_of_the_old_lane(stack, unique_topic):
    """With two producers per partition, a restarted or rebalanced worker's lane initialises both
    transactional ids before its first send, so neither of the old owner's producers (a zombie) can
    commit anything afterwards."""
    from aiokafka.errors import KafkaError

    from stream.delivery import Delivery

    src, out, s = one_partition_topics(stack, unique_topic, delivery_producers=2)
    (b1, o1), (b2, o2) = batches(src, out, 2, 3)

    async def run():
        old, new = Delivery(s, drained=lambda tp, nxt: True), Delivery(s, drained=lambda tp, nxt: True)
        try:
            await old.submit(old.plan(b1, o1))
            await old.flush()
            zombie = list(old._lanes[TopicPartition(src, 0)].producers)
            await new.submit(new.plan(b2, o2))
            await new.flush()
            refused = []
            for p in zombie:
                try:
                    await p.begin_transaction()
                    await (await p.send(out, b"zombie", partition=0))
                    await p.commit_transaction()
                    refused.append(False)
                except KafkaError:
                    refused.append(True)
        finally:
            for d in (old, new):
                try:
                    await d.close()
                except Exception:  # the fenced producers may refuse to stop cleanly
                    pass
        return refused, await settled_group_offset(s, src, 6)

    refused, group = asyncio.run(run())
    got = asyncio.run(_consume_all(stack, out, 6, isolation="read_committed", timeout=10))
    assert refused == [True, True]
    assert group == 6
    assert sorted(r.value for r in got) == sorted(f"o-{src}:0:{i}".encode() for i in range(6))
