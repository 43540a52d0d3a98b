"""Output publishing with the delivery guarantee we own, on aiokafka.

Faust's ``exactly_once`` does not cover these sends: Faust picks the transactional producer
from the consumer's metadata and the group of the *destination* topic, and an output topic
the app does not subscribe to has neither, so the send silently goes out non-transactionally
(seen with faust-streaming 0.15.3; see also faust-streaming #517, #323, #440). So:

* ``exactly_once``: one transactional producer per source partition
  (``transactional_id = <app id>-<topic>-<partition>``, so a restarted or rebalanced worker
  fences its zombie). A batch's outputs and the source offsets go in one transaction:
  read_committed consumers see each output exactly once, even after a SIGKILL.
  Faust itself commits nothing then (``stream.app``): its periodic commit of acked offsets
  could land behind a transaction's and move the group back, so outputs already committed
  would be produced again after a kill.
* ``at_least_once``: one idempotent producer; outputs are confirmed before the events are
  acked. After a crash some outputs repeat, byte for byte (keys make them easy to drop).

``committed(topic, partition)`` is what the jobs' fencing needs: an offset below which Kafka
will never redeliver, so output snapshots below it can go (``stream.core.fencing``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from itertools import groupby
from operator import itemgetter

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from stream.core.records import OutputRecord, SourceRecord
from stream.metrics import add_stage  # observe

log = logging.getLogger(__name__)
_SOURCE_PARTITION, _OFFSET = itemgetter(0, 1), itemgetter(2)  # of a SourceRecord: (topic, partition), offset


def source_spans(batch: list[SourceRecord]) -> dict[tuple[str, int], tuple[int, int]]:
    """Each source partition's (next offset, record count) in ``batch``, in order of appearance.
    A batch holds each partition's records in runs (fetched chunks), so this loops per run and
    leaves the per-record work to C: once per record in Python it was ~2% of the worker."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for key, run in groupby(batch, _SOURCE_PARTITION):
        offsets = list(map(_OFFSET, run))
        nxt, n = spans.get(key, (0, 0))
        spans[key] = (max(nxt, max(offsets) + 1), n + len(offsets))
    return spans


class Publisher:
    def __init__(self, settings):
        self.s = settings
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self._producers: dict[str, AIOKafkaProducer] = {}
        self._lock = asyncio.Lock()
        self._committed: dict[tuple[str, int], int] = {}
        self.committed_elsewhere = lambda topic, partition: None  # at-least-once: Faust's commits (stream.app)

    def track(self, batch: list[SourceRecord]) -> None:
        """Note each partition's first offset seen since start: a consumer starts a partition at
        its committed offset, so everything below it is committed (after a restart, before this
        worker's first commit on the partition). ``batch`` may hold only the first record of each
        fetched run (``stream.app``: one per chunk, not one per record)."""
        for r in batch:
            self._committed.setdefault((r.topic, r.partition), r.offset)

    def committed(self, topic: str, partition: int) -> int | None:
        """An offset of ``topic``/``partition`` known to be committed, or None if unknown."""
        known = (self._committed.get((topic, partition)), self.committed_elsewhere(topic, partition))
        return max((o for o in known if o is not None), default=None)

    def note_committed(self, source: TopicPartition, next_offset: int) -> None:
        """A transaction consuming ``source`` up to ``next_offset`` has committed."""
        key = (source.topic, source.partition)
        self._committed[key] = max(self._committed.get(key, next_offset), next_offset)

    async def new_producer(self, transactional_id: str | None) -> AIOKafkaProducer:
        """A started idempotent producer (transactional when ``transactional_id`` is given);
        ``stream.delivery``'s lanes own theirs, :meth:`publish` caches one per id."""
        p = AIOKafkaProducer(
            **self.s.kafka_client_options(),
            enable_idempotence=True,
            acks="all",
            linger_ms=self.s.producer_linger_ms,
            max_batch_size=256 * 1024,
            transactional_id=transactional_id,
        )
        try:
            await p.start()
        except BaseException:
            try:
                await p.stop()
            except Exception:  # never started: nothing to save
                log.debug("producer stop after a failed start failed", exc_info=True)
            raise
        return p

    async def _producer(self, transactional_id: str | None) -> AIOKafkaProducer:
        name = transactional_id or "shared"
        async with self._lock:
            p = self._producers.get(name)
            if p is None:
                p = self._producers[name] = await self.new_producer(transactional_id)
            return p

    def partition_of(self, o: OutputRecord) -> int | None:
        """The output's Kafka partition: its source partition's number, or Kafka's choice by key."""
        return None if o.partition is None or o.by_key else o.partition % self.s.topic_partitions

    def split(self, batch: list[SourceRecord], outputs: list[OutputRecord]) -> list[tuple]:
        """Split a processed batch into (source partition, its outputs, next offset, count of its
        source events) units.

        Under exactly-once each unit is one transaction; an output goes with the source partition
        it came from (``OutputRecord.partition``), records without one (model events) with the first.
        At-least-once publishes the whole batch as one unit.
        """
        if not self.exactly_once:
            return [(None, outputs, None, len(batch))]
        spans = source_spans(batch)
        by_partition: dict[int, list[OutputRecord]] = {p: [] for _, p in spans}
        first = by_partition[next(iter(by_partition))]
        mine = by_partition.get
        for o in outputs:
            to = mine(o.partition)  # type: ignore[arg-type]
            (first if to is None else to).append(o)
        return [(TopicPartition(t, p), by_partition[p], nxt, n) for (t, p), (nxt, n) in spans.items()]

    async def publish(
        self, source: TopicPartition | None, records: list[OutputRecord], next_offset: int | None
    ) -> None:
        """Make ``records`` durable; under exactly-once, atomically with consuming up to ``next_offset``."""
        if not self.exactly_once:
            p = await self._producer(None)
            futures = [await p.send(o.topic, o.value, key=o.key, partition=self.partition_of(o)) for o in records]
            await asyncio.gather(*futures)
            return
        p = await self._producer(f"{self.s.app_id}-{source.topic}-{source.partition}")
        async with p.transaction():
            for o in records:
                await p.send(o.topic, o.value, key=o.key, partition=self.partition_of(o))
            await p.send_offsets_to_transaction({source: next_offset}, self.s.app_id)
            commit_from = time.perf_counter()  # observe
        self.note_committed(source, next_offset)
        add_stage("commit", time.perf_counter() - commit_from, concurrent=True)  # observe

    async def close(self) -> None:
        for p in self._producers.values():
            try:
                await p.stop()
            except Exception:  # closing on shutdown: nothing left to save
                log.exception("producer stop failed")
        self._producers.clear()
