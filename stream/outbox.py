"""A transaction's outputs written as Kafka record batches: one open batch per output partition.

Why: aiokafka's ``send()`` per record costs a metadata wait, a partition check, a
``TopicPartition``, an accumulator append and a future per record, the sender then resolves every
record's future and the lane gathered them all before each commit: ~20% of the exactly-once
pass-through's samples (``docs/scaling.md``). With ``create_batch()`` / ``send_batch()`` a record
costs one append to a ``BatchBuilder`` and the rest is paid once per batch.

When a partition's batch is handed to the producer: the producer keeps one produce request in
flight per broker, and ``send_batch`` of a partition whose previous batch still waits in the
producer's accumulator waits for it (``MessageAccumulator.add_batch``). So the outbox hands a
partition's batch over when its previous batch is acknowledged (meanwhile records keep joining the
open batch, as they joined the accumulator's batch with ``send()``), when it is full (the
producer's ``max_batch_size``: it is sent and a new one started) or when the lane seals the
transaction (:meth:`Outbox.acked`). The lane waits on :meth:`Outbox.waiting` too, so a batch held
back follows its predecessor's acknowledgement without waiting for the next unit. A batch is closed
when handed over, so the producer's linger adds no delay (the holding back above does its job).

What the lanes guarantee is kept: records keep their order per output partition (appended in order,
batches handed over in order, one at a time per partition, on an idempotent producer); a
transactional producer adds each partition to the open transaction when its batch is handed over
(``send_batch`` -> ``add_batch`` -> ``maybe_add_partition_to_txn``); the commit waits for every
batch's acknowledgement; after a failure the lane starts a new outbox on the new producer and
appends the transaction's records again. Record bytes, keys, partitions (by key: the producer's
own partitioner) and timestamps (append time, as ``send()`` stamped them) are the same as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer

from stream.core.records import OutputRecord

Partition = tuple[str, int]


class Outbox:
    """The record batches of one transaction (at-least-once: of one group of sends) on one producer."""

    __slots__ = ("producer", "open", "last", "futures")

    def __init__(self, producer: AIOKafkaProducer):
        self.producer = producer
        self.open: dict[Partition, object] = {}  # partition -> its BatchBuilder not handed over yet
        self.last: dict[Partition, asyncio.Future] = {}  # partition -> its last handed-over batch
        self.futures: list[asyncio.Future] = []  # every handed-over batch's acknowledgement

    async def add(self, records: Iterable[OutputRecord], partition_of: Callable[[OutputRecord], int | None]) -> None:
        """Append ``records`` to their partitions' open batches, then hand over every open batch
        whose partition has nothing in flight."""
        builders, new = self.open, self.producer.create_batch
        for o in records:
            part = partition_of(o)
            if part is None:
                part = await self._by_key(o)
            tp = (o.topic, part)
            b = builders.get(tp)
            if b is None:
                b = builders[tp] = new()
            if b.append(key=o.key, value=o.value, timestamp=None) is None:  # full: send it, start anew
                await self._hand_over(tp)
                b = builders[tp] = new()
                b.append(key=o.key, value=o.value, timestamp=None)  # a first record always fits
        await self.send_ready()

    def ready(self) -> bool:
        """Some open batch's partition has nothing in flight (its previous batch acknowledged)."""
        last = self.last
        return any(tp not in last or last[tp].done() for tp in self.open)

    def waiting(self) -> list[asyncio.Future]:
        """The in-flight batches that open batches wait behind (the lane wakes up on them)."""
        return [self.last[tp] for tp in self.open if tp in self.last and not self.last[tp].done()]

    async def send_ready(self) -> None:
        last = self.last
        for tp in [tp for tp in self.open if tp not in last or last[tp].done()]:
            await self._hand_over(tp)

    async def acked(self) -> None:
        """Hand over every open batch and wait for all acknowledgements (raises if one failed)."""
        for tp in list(self.open):
            await self._hand_over(tp)
        await asyncio.gather(*self.futures)

    async def _hand_over(self, tp: Partition) -> None:
        b = self.open.pop(tp)
        b.close()  # nothing joins it once handed over, and the producer's linger does not apply
        f = await self.producer.send_batch(b, tp[0], partition=tp[1])
        self.last[tp] = f
        self.futures.append(f)

    async def _by_key(self, o: OutputRecord) -> int:
        """Kafka's choice by key, as ``send()`` made it: the producer's own partitioner over the
        topic's partitions (aiokafka is pinned in pyproject.toml: ``_partition`` is its helper)."""
        await self.producer.partitions_for(o.topic)  # waits for the topic's metadata
        return self.producer._partition(o.topic, None, o.key, o.value, o.key, o.value)
