"""A delivery lane's producers: one per slot, their transactional ids initialised together.

Why a module of its own: a lane (``stream.lanes``) decides what goes into which transaction; this
owns the producers it runs them on. Under exactly-once slot 0's transactional id is
``<app id>-<topic>-<partition>`` and slot n's the same with ``-n``; when the lane first needs a
producer, every slot's is started (its id initialised) at once, so a restarted or rebalanced worker
fences all of a zombie's producers, and aborts whatever they had open, before its first send. After
a failure the lane discards one slot's producer; the next one, under the same id, aborts what the
old one had open. Under at-least-once there is one slot and no transactional id.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)


class ProducerSlots:
    """The producers of one lane, by slot (``None`` where none is started)."""

    def __init__(self, publisher, app_id: str, source: TopicPartition | None, n: int, transactional: bool):
        self.publisher = publisher
        self.app_id = app_id
        self.source = source
        self.transactional = transactional
        self.producers: list[AIOKafkaProducer | None] = [None] * n

    def __len__(self) -> int:
        return len(self.producers)

    def __getitem__(self, slot: int) -> AIOKafkaProducer | None:
        return self.producers[slot]

    def __iter__(self):
        return iter(self.producers)

    def tid(self, slot: int) -> str | None:
        if not self.transactional or self.source is None:
            return None
        base = f"{self.app_id}-{self.source.topic}-{self.source.partition}"
        return base if slot == 0 else f"{base}-{slot}"

    async def get(self, slot: int) -> AIOKafkaProducer:
        """The slot's producer, started if need be (at the lane's start: every slot's at once)."""
        if all(p is None for p in self.producers):  # lane start: fence every slot's zombie first
            started = await asyncio.gather(
                *(self.publisher.new_producer(self.tid(i)) for i in range(len(self))), return_exceptions=True
            )
            failed = [x for x in started if isinstance(x, BaseException)]
            if failed:
                for x in started:
                    if isinstance(x, AIOKafkaProducer):
                        await quiet_stop(x)
                raise failed[0]
            self.producers = list(started)  # type: ignore[arg-type]
        p = self.producers[slot]
        if p is None:
            p = self.producers[slot] = await self.publisher.new_producer(self.tid(slot))
        return p

    async def discard(self, slot: int) -> None:
        """Stop and forget the slot's producer (after a failure, or when the lane stops)."""
        p, self.producers[slot] = self.producers[slot], None
        if p is not None:
            await quiet_stop(p)

    async def stop(self) -> None:
        for slot in range(len(self)):
            await self.discard(slot)


async def quiet_stop(p: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(p.stop(), timeout=10)
    except Exception:  # a broken producer: nothing left to save in it
        log.debug("producer stop failed", exc_info=True)
