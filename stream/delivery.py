"""Amortised delivery: processed batches become durable here, in order, one lane per source partition.

Why a layer of its own: one Kafka transaction per batch made the worker wait on the broker
between batches (begin, send, add offsets, commit: several round trips each time). Here each
source partition has a *lane*: the runtime queues a processed batch and takes the next one at
once, while the lane's open transaction takes batch after batch and commits

* every ``FINSTREAM_COMMIT_INTERVAL_MS`` (under exactly-once default 100 ms, like Kafka Streams),
* or when it holds ``FINSTREAM_COMMIT_MAX_EVENTS`` source events,
* or at once when the partition's input is drained (nothing queued behind it and the consumer
  has reached the end offset): the interval bounds the wait under load and adds none at light load.

A lane's queue is bounded (``FINSTREAM_DELIVERY_INFLIGHT`` batches), so a slow broker slows the
processing instead of filling memory (backpressure). Order per partition is the queue's order.

Guarantees, unchanged by the batching: under exactly-once a lane owns one transactional producer
(``transactional_id = <app id>-<topic>-<partition>``, so a restarted or rebalanced worker fences
its zombie), or two used alternately with ``FINSTREAM_DELIVERY_PRODUCERS=2`` (the second's id ends
in ``-1``; both initialised before the lane's first send: ``stream.lanes``), and one transaction
carries the outputs *and* the source offset of every batch in it. A batch's ``on_durable`` (the runtime acks its events there) runs
only after the commit, and :meth:`Delivery.committed` moves only then: the jobs keep every output
snapshot at or above it (``stream.core.fencing``), which is what a redelivery after a kill needs.
Under at-least-once a lane is one idempotent producer for all partitions and its "commit" is
waiting for every send's acknowledgement.

Kafka outages are waited out (issue 7 item 4): a failed send or commit throws that transaction's
producer away (a new producer with the same transactional id aborts what was open), marks
``HEALTH`` kafka false, backs off (doubling up to ``FINSTREAM_OUTAGE_BACKOFF_MAX_S``) and resends
every batch of the transaction from memory; nothing is acked meanwhile. A producer fenced by another
worker is not an outage but a zombie: the process exits without acking (the events are redelivered
to the worker that fenced it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from aiokafka.structs import TopicPartition

from stream.core.records import OutputRecord, SourceRecord
from stream.lanes import EXIT_UNPROCESSABLE, Lane, Unit  # noqa: F401  (Unit, the exit code: part of this API)
from stream.publisher import Publisher
from stream.stagetrace import now_ms, open_trace

log = logging.getLogger(__name__)


def drained_by_highwater(highwater: Callable[[TopicPartition], int | None]) -> Callable[[TopicPartition, int], bool]:
    """The lanes' "partition drained" check for a consumer: its next offset has reached the
    partition's high-water mark as of the last fetch (unknown counts as drained: commit rather than
    wait). One check for every consumer that feeds lanes (Faust's in ``stream.app``, the plain loop
    of ``stream.tools.bench_passthrough``), so the worker and its ceiling commit by the same rule."""

    def drained(tp: TopicPartition, next_offset: int) -> bool:
        hw = highwater(tp)
        return hw is None or next_offset >= hw

    return drained


class Delivery:
    def __init__(self, settings, drained: Callable[[TopicPartition, int], bool] | None = None):
        self.s = settings
        self.publisher = Publisher(settings)
        self.exactly_once = self.publisher.exactly_once
        self.drained = drained or (lambda tp, next_offset: True)
        self.interval = settings.commit_interval_s
        self._lanes: dict[TopicPartition | None, Lane] = {}
        self._closing = False
        self.commits: Counter = Counter()  # transactions committed, by trigger (interval / early)
        self.trace = open_trace(settings)

    def plan(
        self,
        batch: list[SourceRecord],
        outputs: list[OutputRecord],
        fetched: list[float] | None = None,
        marks: dict[str, float] | None = None,
    ) -> list[Unit]:
        """The publisher's split of a batch (one unit per source partition under exactly-once).
        ``fetched`` (per record) and ``marks`` (per batch): stage times, kept only when tracing."""
        units = [Unit(tp, outs, nxt, n) for tp, outs, nxt, n in self.publisher.split(batch, outputs)]
        if self.trace is not None:
            for u in units:
                mine = [i for i, r in enumerate(batch) if u.source is None or (r.topic, r.partition) == tuple(u.source)]
                u.trace = {
                    "ts": [batch[i].timestamp_ms for i in mine],
                    "fetched": [fetched[i] for i in mine] if fetched else [],
                    "marks": {**(marks or {}), "planned": now_ms()},
                }
        return units

    async def submit(self, units: list[Unit]) -> None:
        """Queue a processed batch's units; waits only while a lane is full (backpressure)."""
        for u in units:
            lane = self._lanes.get(u.source)
            if lane is None:
                lane = self._lanes[u.source] = Lane(self, u.source)
            await lane.queue.put(u)

    def committed(self, topic: str, partition: int) -> int | None:
        """An offset of (topic, partition) known to be committed, or None (``Publisher.committed``:
        what this worker's transactions committed, or the partition's first offset since start)."""
        return self.publisher.committed(topic, partition)

    def inflight(self) -> int:
        """Units queued or in an open transaction (a gauge for the metrics and the bench)."""
        return sum(lane.queue.qsize() + len(lane.pending) for lane in self._lanes.values())

    async def flush(self, partitions=None) -> None:
        """Commit everything queued or open (shutdown, partitions revoked)."""
        for key, lane in list(self._lanes.items()):
            if partitions is None or key in partitions:
                await lane.flush()

    async def release(self, partitions) -> None:
        """Partitions revoked: commit what they hold, then drop their producers so the new owner's
        transactional producer starts clean (and ours cannot be fenced later as a zombie)."""
        for tp in partitions:
            lane = self._lanes.pop(TopicPartition(tp.topic, tp.partition), None)
            if lane is not None:
                await lane.flush()
                await lane.stop()

    async def close(self) -> None:
        log.info("delivery commits by trigger: %s", dict(self.commits))
        self._closing = True
        try:
            await asyncio.wait_for(self.flush(), timeout=30)
        except Exception:  # shutting down: what is not committed is redelivered
            log.exception("delivery flush on shutdown failed; uncommitted batches will be redelivered")
        for lane in self._lanes.values():
            await lane.stop()
        self._lanes.clear()

    def _durable(self, units: list[Unit], commit_s: float) -> None:
        for u in units:
            if u.source is not None:
                self.publisher.note_committed(u.source, u.next_offset)
            if u.trace is not None and self.trace is not None:
                self.trace.write(u.source, u.trace["ts"], u.trace["fetched"], u.trace["marks"])
        for u in units:
            if u.on_durable is not None:
                try:
                    u.on_durable(commit_s)
                except Exception:  # acking/metrics must never stop delivery
                    log.exception("on_durable callback failed")
