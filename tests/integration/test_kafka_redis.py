"""The real broker and server with the project's own delivery code and scripts: keyed ordering,
stream.publisher's transactions (outputs + source offsets, fencing), the state .lua scripts."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

N = 300
KEYS = [f"k{i}" for i in range(7)]


async def _consume_all(settings, topic: str, expected: int, isolation: str = "read_uncommitted", timeout: float = 30):
    """Read topic from the beginning until `expected` records arrived or timeout (then what we have)."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        isolation_level=isolation,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        while not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in parts])
        await consumer.seek_to_beginning()
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                got.extend(recs)
        if len(got) == expected:  # anything extra would show up within one more poll
            for recs in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(recs)
        return got
    finally:
        await consumer.stop()


def test_produce_consume_keys_and_order(stack, unique_topic):
    topic = unique_topic()

    async def run():
        producer = AIOKafkaProducer(**stack.kafka_client_options(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            sent = [(KEYS[i % len(KEYS)], i) for i in range(N)]
            for key, i in sent:
                await producer.send(topic, key=key.encode(), value=str(i).encode())
            await producer.flush()
        finally:
            await producer.stop()
        return await _consume_all(stack, topic, N)

    records = asyncio.run(run())
    assert len(records) == N
    per_key: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    for r in records:
        per_key[r.key.decode()].append(int(r.value))
        partition_of[r.key.decode()].add(r.partition)
    assert set(per_key) == set(KEYS)
    for key, values in per_key.items():
        assert values == sorted(values), f"order broken for {key}"
        assert values == [i for i in range(N) if KEYS[i % len(KEYS)] == key]
        assert len(partition_of[key]) == 1, "a key must map to one partition"
    assert len({p for ps in partition_of.values() for p in ps}) > 1  # auto-created with topic_partitions


def source_topic_with_records(stack, topic: str, partitions: int, per_partition: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def run():
        admin = AIOKafkaAdminClient(**stack.kafka_client_options())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(**stack.kafka_client_options(), enable_idempotence=True)
        await producer.start()
        try:
            for p in range(partitions):
                for i in range(per_partition):
                    await producer.send_and_wait(topic, f"in{p}-{i}".encode(), partition=p)
        finally:
            await producer.stop()

    asyncio.run(run())


def publisher_settings(stack, guarantee: str, partitions: int):
    import os
    import uuid

    from stream.settings import settings_from_env

    return settings_from_env(
        {
            **os.environ,
            "FINSTREAM_APP_ID": f"pub-{uuid.uuid4().hex[:8]}",
            "FINSTREAM_PROCESSING_GUARANTEE": guarantee,
            "FINSTREAM_TOPIC_PARTITIONS": str(partitions),
        }
    )


def test_publisher_commits_outputs_and_source_offsets_in_one_transaction_per_partition(stack, unique_topic):
    """stream.publisher under exactly-once: each source partition's outputs go to that partition
    number, atomically with the group's source offsets; a fenced zombie cannot publish."""
    from aiokafka.errors import KafkaError

    from stream.core.records import OutputRecord, SourceRecord
    from stream.publisher import Publisher

    src, out = unique_topic("src"), unique_topic("out")
    s = publisher_settings(stack, "exactly_once", 2)
    source_topic_with_records(stack, src, 2, 3)
    source_topic_with_records(stack, out, 2, 0)
    batch = [SourceRecord(src, p, o, None, b"") for p in (0, 1) for o in range(3)]
    outputs = [OutputRecord(out, r.source_id.encode(), b"o-" + r.source_id.encode(), r.partition) for r in batch]
    outputs.append(OutputRecord(out, b"model-event", b"no source partition"))

    async def run():
        pub = Publisher(s)
        try:
            units = [unit[:3] for unit in pub.split(batch, outputs)]
            assert sorted((tp.partition, len(recs), nxt) for tp, recs, nxt in units) == [(0, 4, 3), (1, 3, 3)]
            for unit in units:
                await pub.publish(*unit)
            zombie_unit = units[0]
            successor = Publisher(s)  # same app id: same transactional ids, as after a rebalance
            try:
                await successor.publish(zombie_unit[0], [], zombie_unit[2])
                try:
                    await pub.publish(*zombie_unit)
                    fenced = False
                except KafkaError:
                    fenced = True
            finally:
                await successor.close()
        finally:
            await pub.close()
        consumer = AIOKafkaConsumer(**stack.kafka_client_options(), group_id=s.app_id, enable_auto_commit=False)
        await consumer.start()
        try:
            committed = {p: await consumer.committed(TopicPartition(src, p)) for p in (0, 1)}
        finally:
            await consumer.stop()
        return fenced, committed, await _consume_all(stack, out, len(outputs), isolation="read_committed")

    fenced, committed, got = asyncio.run(run())
    assert fenced, "a producer whose transactional id was taken over must be fenced"
    assert committed == {0: 3, 1: 3}
    assert sorted(r.value for r in got) == sorted(o.value for o in outputs)  # once each, the zombie's repeat not
    for r in got:
        if r.key != b"model-event":
            assert r.partition == int(r.key.decode().split(":")[1])  # the source's partition number


def test_publisher_at_least_once_delivers_every_output(stack, unique_topic):
    from stream.core.records import OutputRecord, SourceRecord
    from stream.publisher import Publisher

    out = unique_topic("out")
    s = publisher_settings(stack, "at_least_once", 2)
    source_topic_with_records(stack, out, 2, 0)
    batch = [SourceRecord("in", p, o, None, b"") for p in (0, 1) for o in range(5)]
    outputs = [OutputRecord(out, r.source_id.encode(), r.source_id.encode(), r.partition) for r in batch]

    async def run():
        pub = Publisher(s)
        try:
            [unit] = pub.split(batch, outputs)
            await pub.publish(*unit[:3])
        finally:
            await pub.close()
        return await _consume_all(stack, out, len(outputs))

    got = asyncio.run(run())
    assert sorted((r.partition, r.value) for r in got) == sorted((o.partition, o.value) for o in outputs)


def test_the_state_script_compares_and_sets(redis_client, redis_prefix):
    """The project's own .lua file, called raw as Redis runs it (its KEYS/ARGV contract: expected
    fence, new fence, blob, the new snapshot index, then chunk field/value pairs, as
    ``entities.save_fields`` computes them)."""
    from stream.state.redis_store import FENCED_SET

    fenced_set = redis_client.register_script(FENCED_SET)
    key = f"{redis_prefix}:acct:{{a}}"
    one = b'1:3:"x"'  # the snapshot of offset 1 as a log entry
    assert fenced_set(keys=[key], args=["", "0:1", b"s1", b"1||0:1:1:1;", b"c0", one]) == 1  # new entity
    assert fenced_set(keys=[key], args=["", "0:2", b"zombie", b"0||"]) == 0  # stale: refused, nothing written
    assert redis_client.hgetall(key) == {b"fence": b"0:1", b"blob": b"s1", b"ix": b"1||0:1:1:1;", b"c0": one}
    two = b'2:3:"y"'
    # committed up to offset 2: the chunk of offset 1 went, offset 2's is written in its slot
    assert fenced_set(keys=[key], args=["0:1", "0:2", b"s2", b"1||0:2:2:1;", b"c0", two]) == 1
    assert redis_client.hgetall(key) == {b"fence": b"0:2", b"blob": b"s2", b"ix": b"1||0:2:2:1;", b"c0": two}
    # a save with no new snapshot that drops its only chunk: the field is emptied, its slot listed free
    assert fenced_set(keys=[key], args=["0:2", "0:3", b"s3", b"1|0,|", b"c0", b""]) == 1
    assert redis_client.hgetall(key) == {b"fence": b"0:3", b"blob": b"s3", b"ix": b"1|0,|", b"c0": b""}
    assert fenced_set(keys=[key], args=["0:3", "0:4", b"s4", b"1|0,|"]) == 1  # no chunk field at all
    assert redis_client.hget(key, "blob") == b"s4"


def test_stack_settings_point_at_private_ports(stack):
    assert stack.kafka_host_port[0] == "127.0.0.1"
    assert stack.kafka_host_port[1] not in (9092,) and stack.redis_host_port[1] != 6379
