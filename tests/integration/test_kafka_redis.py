"""The real broker and server behave as the engine relies on: keyed ordering, transactions, Lua in Redis."""
from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

N = 300
KEYS = [f"k{i}" for i in range(7)]


async def _consume_all(settings, topic: str, expected: int, isolation: str = "read_uncommitted", timeout: float = 30):
    """Read topic from the beginning until `expected` records arrived or timeout (then what we have)."""
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), isolation_level=isolation,
                                enable_auto_commit=False, auto_offset_reset="earliest")
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


def test_transactions_commit_and_abort(stack, unique_topic):
    topic = unique_topic("tx")

    async def run():
        producer = AIOKafkaProducer(**stack.kafka_client_options(), transactional_id=f"txn-{topic}")
        await producer.start()
        try:
            for batch, commit in (("a", True), ("b", False), ("c", True)):
                await producer.begin_transaction()
                for i in range(10):
                    await producer.send(topic, key=batch.encode(), value=f"{batch}{i}".encode())
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        committed = await _consume_all(stack, topic, 20, isolation="read_committed")
        everything = await _consume_all(stack, topic, 30, isolation="read_uncommitted")
        return committed, everything

    committed, everything = asyncio.run(run())
    by_key = defaultdict(list)  # keys a and c may sit on different partitions: compare per key
    for r in committed:
        by_key[r.key.decode()].append(r.value.decode())
    assert dict(by_key) == {"a": [f"a{i}" for i in range(10)], "c": [f"c{i}" for i in range(10)]}
    assert len(everything) == 30  # aborted records are in the log, only read_committed hides them
    assert {r.value.decode() for r in everything} >= {f"b{i}" for i in range(10)}


CAPPED_INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[2])
  return tonumber(ARGV[2])
end
return v
"""


def test_redis_roundtrip_and_lua(redis_client, stack):
    p = stack.redis_key_prefix
    assert redis_client.ping()
    assert redis_client.dbsize() == 0  # flushed by the fixture
    redis_client.set(f"{p}:s", "v")
    redis_client.hset(f"{p}:h", mapping={"a": 1, "b": "x"})
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.rpush(f"{p}:l", 1, 2, 3).lrange(f"{p}:l", 0, -1)
        _, items = pipe.execute()
    assert redis_client.get(f"{p}:s") == b"v"
    assert redis_client.hgetall(f"{p}:h") == {b"a": b"1", b"b": b"x"}
    assert items == [b"1", b"2", b"3"]

    assert redis_client.eval(CAPPED_INCR, 1, f"{p}:c", 7, 10) == 7
    script = redis_client.register_script(CAPPED_INCR)  # EVALSHA path, as the state store uses
    assert script(keys=[f"{p}:c"], args=[7, 10]) == 10
    assert redis_client.get(f"{p}:c") == b"10"


def test_stack_settings_point_at_private_ports(stack):
    assert stack.kafka_host_port[0] == "127.0.0.1"
    assert stack.kafka_host_port[1] not in (9092,) and stack.redis_host_port[1] != 6379
