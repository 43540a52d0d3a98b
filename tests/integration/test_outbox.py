"""stream.outbox through the delivery lanes against the real broker: outputs go out as record
batches per output partition with the bytes, the order and the partitions that one ``send()`` per
record gave (order: per output partition within a source partition's lane), including batches that
fill up (a new one is started) and records Kafka places by key."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from stream.core.records import OutputRecord, SourceRecord
from tests.integration.test_kafka_redis import _consume_all, publisher_settings, source_topic_with_records

BIG = 120 * 1024  # three of these overflow a partition's batch (the producer's max_batch_size, 256 KB)


def outputs_of(batch: list[SourceRecord], out: str, keyed: str) -> list[OutputRecord]:
    outs = []
    for r in batch:
        sid = r.source_id.encode()
        body = (sid * (1 + BIG // len(sid))) if r.offset % 7 == 3 else b"o-" + sid
        outs.append(OutputRecord(out, sid, body, r.partition))
        if r.offset % 3 == 0:
            outs.append(OutputRecord(keyed, b"user-%d" % (r.offset % 11), b"k-" + sid, r.partition, by_key=True))
    return outs


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_batched_outputs_keep_the_bytes_order_and_partitions_of_one_send_per_record(stack, unique_topic, guarantee):
    from stream.delivery import Delivery

    src, out, keyed, ref = unique_topic("src"), unique_topic("out"), unique_topic("keyed"), unique_topic("ref")
    s = publisher_settings(stack, guarantee, 2).model_copy(update={"commit_interval_ms": 300})
    source_topic_with_records(stack, src, 2, 0)
    source_topic_with_records(stack, out, 2, 0)
    source_topic_with_records(stack, keyed, 4, 0)
    source_topic_with_records(stack, ref, 4, 0)
    batches = [[SourceRecord(src, p, b * 20 + i, None, b"") for p in (0, 1) for i in range(20)] for b in range(8)]
    expected = [o for batch in batches for o in outputs_of(batch, out, keyed)]

    async def run():
        durable: list[int] = []
        d = Delivery(s, drained=lambda tp, nxt: False)  # under load: batches pile into open transactions
        try:
            for batch in batches:  # queued back to back: a partition's batches wait behind one in flight
                units = d.plan(batch, outputs_of(batch, out, keyed))
                for u in units:
                    u.on_durable = lambda commit_s, n=u.events: durable.append(n)
                await d.submit(units)
            deadline = time.monotonic() + 60
            while sum(durable) < 320 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await d.close()
        # the reference: where one send() per record puts the keyed records
        p = AIOKafkaProducer(**s.kafka_client_options())
        await p.start()
        try:
            where = {}
            for o in expected:
                if o.by_key and o.key not in where:
                    where[o.key] = (await p.send_and_wait(ref, o.value, key=o.key)).partition
        finally:
            await p.stop()
        n_out = sum(1 for o in expected if o.topic == out)
        got_out = await _consume_all(s, out, n_out, isolation="read_committed")
        got_keyed = await _consume_all(s, keyed, len(expected) - n_out, isolation="read_committed")
        return sum(durable), where, got_out, got_keyed

    durable, where, got_out, got_keyed = asyncio.run(run())
    assert durable == 320

    def partition(o: OutputRecord) -> int:
        return where[o.key] if o.by_key else o.partition

    # order is kept per output partition within each source partition's lane (the lanes of two
    # source partitions are separate transactions: their records interleave in a keyed partition)
    source_of = {o.value: o.partition for o in expected}
    for topic, got in ((out, got_out), (keyed, got_keyed)):
        assert all(r.value in source_of for r in got), f"{topic}: a record that was never sent"
        for part in {r.partition for r in got} | {partition(o) for o in expected if o.topic == topic}:
            for lane in (0, 1):
                want = [
                    (o.key, o.value)
                    for o in expected
                    if o.topic == topic and partition(o) == part and o.partition == lane
                ]
                seen = sorted(
                    (r for r in got if r.partition == part and source_of[r.value] == lane), key=lambda r: r.offset
                )
                assert [(r.key, r.value) for r in seen] == want, f"{topic}[{part}] from {lane}: bytes or order differ"
    assert len(got_out) + len(got_keyed) == len(expected)  # nothing else, nothing twice
    assert len({where[o.key] for o in expected if o.by_key}) > 1  # the keys really spread
