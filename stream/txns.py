"""What a delivery lane (``stream.lanes``) carries: units, one processed batch's share for one source
partition, and the transaction that groups them on one producer slot.

Apart from the lane because these are plain records of state that the lane's loop, its seal and its
retries all read and write; keeping them here leaves ``stream.lanes`` to the order of those steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from stream.core.records import OutputRecord
from stream.outbox import Outbox
from stream.stagetrace import now_ms


@dataclass(slots=True)
class Unit:
    """One processed batch's share for one source partition (or the whole batch, at-least-once)."""

    source: TopicPartition | None
    records: list[OutputRecord]
    next_offset: int | None
    events: int
    on_durable: Callable[[float], None] | None = None  # called with the commit's seconds
    queued_at: float = field(default_factory=time.perf_counter)
    trace: dict | None = None  # FINSTREAM_STAGE_TRACE_DIR only: source timestamps and stage marks


class Txn:
    """The batches of one transaction (at-least-once: of one group of sends) on one producer slot."""

    def __init__(self, slot: int):
        self.slot = slot
        self.units: list[Unit] = []
        self.events = 0
        self.outbox: Outbox | None = None  # its record batches on the slot's current producer
        self.opened_at = 0.0
        self.begun = False  # begin_transaction() called on the slot's current producer
        self.offsets: asyncio.Future | None = None  # send_offsets_to_transaction under way at the seal
        self.offsets_on: AIOKafkaProducer | None = None  # ... on this producer
        self.due = False  # the early trigger fired: commit as soon as the previous commit is done

    async def acked(self) -> None:
        """Every send of the transaction acknowledged (raises if one failed)."""
        if self.outbox is not None:
            await self.outbox.acked()


def mark(units: list[Unit], stage: str) -> None:
    """Stage time of traced units (``stream.stagetrace``); nothing when tracing is off."""
    if units and units[0].trace is not None:
        stamp = now_ms()
        for u in units:
            if u.trace is not None:
                u.trace["marks"][stage] = stamp
