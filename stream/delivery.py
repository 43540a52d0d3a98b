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
(``stream.publisher``: ``transactional_id = <app id>-<topic>-<partition>``, so a restarted or
rebalanced worker fences its zombie) and one transaction carries the outputs *and* the source
offset of every batch in it. A batch's ``on_durable`` (the runtime acks its events there) runs
only after the commit, and :meth:`Delivery.committed` moves only then: the jobs keep every output
snapshot at or above it (``stream.core.fencing``), which is what a redelivery after a kill needs.
Under at-least-once a lane is one idempotent producer for all partitions and its "commit" is
waiting for every send's acknowledgement.

Kafka outages are waited out (issue 7 item 4): a failed send or commit throws the lane's producer
away (a new producer with the same transactional id aborts what was open), marks ``HEALTH``
kafka false, backs off (doubling up to ``FINSTREAM_OUTAGE_BACKOFF_MAX_S``) and resends every batch
of the open transaction from memory; nothing is acked meanwhile. A producer fenced by another
worker is not an outage but a zombie: the process exits without acking (the events are redelivered
to the worker that fenced it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from aiokafka.structs import TopicPartition

from stream.core.records import OutputRecord, SourceRecord
from stream.health import HEALTH
from stream.publisher import Publisher
from stream.stagetrace import now_ms, open_trace

log = logging.getLogger(__name__)
EXIT_UNPROCESSABLE = 75


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


class Delivery:
    def __init__(self, settings, drained: Callable[[TopicPartition, int], bool] | None = None):
        self.s = settings
        self.publisher = Publisher(settings)
        self.exactly_once = self.publisher.exactly_once
        self.drained = drained or (lambda tp, next_offset: True)
        self.interval = settings.commit_interval_s
        self._lanes: dict[TopicPartition | None, _Lane] = {}
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
        counts: dict[tuple[str, int], int] = {}
        for r in batch:
            counts[(r.topic, r.partition)] = counts.get((r.topic, r.partition), 0) + 1
        units = [
            Unit(tp, outs, nxt, len(batch) if tp is None else counts[(tp.topic, tp.partition)])
            for tp, outs, nxt in self.publisher.plan(batch, outputs)
        ]
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
                lane = self._lanes[u.source] = _Lane(self, u.source)
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


class _Lane:
    """One source partition's (or, at-least-once, the process's) queue and open transaction."""

    def __init__(self, d: Delivery, source: TopicPartition | None):
        self.d = d
        self.source = source
        self.queue: asyncio.Queue[Unit] = asyncio.Queue(maxsize=max(1, d.s.delivery_inflight))
        self.pending: list[Unit] = []  # in the open transaction, not yet durable
        self.pending_events = 0
        self.futures: list[asyncio.Future] = []
        self.opened_at = 0.0
        self.producer: AIOKafkaProducer | None = None
        self.in_txn = False
        self.busy = False
        self.task = asyncio.create_task(self._run(), name=f"delivery-{source}")
        self.task.add_done_callback(_lane_died)

    async def flush(self) -> None:
        while not self.queue.empty() or self.pending or self.busy:
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        self.task.remove_done_callback(_lane_died)
        self.task.cancel()
        try:
            await self.task
        except BaseException:  # cancelled on purpose
            pass
        if self.producer is not None:
            await _quiet_stop(self.producer)
            self.producer = None

    async def _run(self) -> None:
        d = self.d
        while True:
            if self.pending:
                wait = self.opened_at + d.interval - time.monotonic()
                if wait <= 0 or d._closing:
                    d.commits["interval"] += 1
                    await self._commit_until_done()
                    continue
                try:
                    unit = await asyncio.wait_for(self.queue.get(), wait)
                except TimeoutError:
                    d.commits["interval"] += 1
                    await self._commit_until_done()
                    continue
            else:
                unit = await self.queue.get()
            self.busy = True
            _mark([unit], "dequeued")
            try:
                await self._add_until_done(unit)
                _mark([unit], "sent")
                if (
                    self.pending_events >= d.s.commit_max_events
                    or d._closing
                    or (self.queue.empty() and self._drained(unit))
                ):
                    d.commits["early"] += 1
                    await self._commit_until_done()
            finally:
                self.busy = False

    def _drained(self, unit: Unit) -> bool:
        if unit.source is None:  # at-least-once: acks wait for the sends only
            return True
        try:
            return self.d.drained(unit.source, unit.next_offset)
        except Exception:  # no end offset known yet: commit rather than wait
            return True

    # --- one transaction ----------------------------------------------------------------------------
    async def _send(self, unit: Unit) -> None:
        d = self.d
        if self.producer is None:
            tid = f"{d.s.app_id}-{self.source.topic}-{self.source.partition}" if d.exactly_once else None
            self.producer = await d.publisher.new_producer(tid)
        if d.exactly_once and not self.in_txn:
            await self.producer.begin_transaction()
            self.in_txn = True
        send, part, futures = self.producer.send, d.publisher.partition_of, self.futures
        for o in unit.records:
            futures.append(await send(o.topic, o.value, key=o.key, partition=part(o)))

    async def _add_until_done(self, unit: Unit) -> None:
        if not self.pending:
            self.opened_at = time.monotonic()
        self.pending.append(unit)
        self.pending_events += unit.events
        await self._retrying(lambda: self._send(unit), resend=False)

    async def _commit(self) -> None:
        p = self.producer
        await asyncio.gather(*self.futures)  # every send acknowledged (raises if one failed)
        _mark(self.pending, "acked")
        if self.d.exactly_once:
            await p.send_offsets_to_transaction({self.source: self.pending[-1].next_offset}, self.d.s.app_id)
            _mark(self.pending, "offsets")
            await p.commit_transaction()
            self.in_txn = False

    async def _commit_until_done(self) -> None:
        if not self.pending:
            return
        t = time.perf_counter()
        _mark(self.pending, "commit_start")
        await self._retrying(self._commit, resend=True)
        _mark(self.pending, "committed")
        units, self.pending, self.pending_events, self.futures = self.pending, [], 0, []
        self.d._durable(units, time.perf_counter() - t)

    async def _retrying(self, step, resend: bool) -> None:
        """Run ``step`` until it succeeds; after a failure, start over with a fresh producer and the
        whole open transaction resent (the failed one is aborted by the new producer's init)."""
        delay, failing_since = 0.1, None
        while True:
            try:
                if failing_since is None:
                    await step()
                    return
                self.futures = []
                for u in self.pending:
                    await self._send(u)
                if resend:
                    await step()
                HEALTH.set("kafka", True, "delivering again")
                log.warning("delivery to Kafka recovered after %.1fs", time.monotonic() - failing_since)
                return
            except ProducerFenced:
                log.critical(
                    "producer for %s fenced by another worker (partition moved); exiting without "
                    "acking, its events are redelivered there",
                    self.source,
                )
                logging.shutdown()
                os._exit(EXIT_UNPROCESSABLE)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                HEALTH.set("kafka", False, f"delivery failing: {type(exc).__name__}")
                log.warning(
                    "delivery of %s failed (%s: %s); new producer, retrying in %.1fs (outage %.0fs)",
                    self.source or "outputs",
                    type(exc).__name__,
                    exc,
                    delay,
                    time.monotonic() - failing_since,
                )
                if self.producer is not None:
                    await _quiet_stop(self.producer)
                self.producer, self.in_txn = None, False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.d.s.outage_backoff_max_s)


def _mark(units: list[Unit], stage: str) -> None:
    """Stage time of traced units (``stream.stagetrace``); nothing when tracing is off."""
    if units and units[0].trace is not None:
        t = now_ms()
        for u in units:
            if u.trace is not None:
                u.trace["marks"][stage] = t


def _lane_died(task: asyncio.Task) -> None:
    """A lane must never stop silently: its partition would stall with its events un-acked."""
    if task.cancelled():
        return
    exc = task.exception()
    log.critical("delivery lane %s stopped (%r); exiting without acking", task.get_name(), exc, exc_info=exc)
    logging.shutdown()
    os._exit(EXIT_UNPROCESSABLE)


async def _quiet_stop(p: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(p.stop(), timeout=10)
    except Exception:  # a broken producer: nothing left to save in it
        log.debug("producer stop failed", exc_info=True)
