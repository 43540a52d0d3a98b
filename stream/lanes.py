"""A delivery lane: one source partition's queue of processed batches and its transactions.

A transaction is *sealed* once its sends are acknowledged (its source offsets are added to it
meanwhile, so AddOffsetsToTxn/TxnOffsetCommit overlap the produce round trip) and then commits in
the background (units and transactions: ``stream.txns``). ``FINSTREAM_DELIVERY_PRODUCERS=2`` lets
the next transaction open on a second producer while the previous one commits; why it exists, and
the paced-latency A/B that left one producer the default: docs/scaling.md (its "Changes" naming
this module).

What keeps it exactly-once with two producers:

* **order**: a transaction is sealed only after its sends are acknowledged, and the next one's
  sends start after that, so outputs keep the source order in every output partition; a sealed
  transaction commits only after the one before it has committed, so the group's offset only
  moves forward and ``on_durable`` runs in order;
* **zombies**: both transactional ids (``<app id>-<topic>-<partition>`` and the same with ``-1``)
  are initialised when the lane starts, before its first send (``stream.slots``), so a restarted or rebalanced worker
  fences both of a zombie's producers and aborts whatever either had open;
* **failures**: a failed send or commit throws away only that transaction's producer (the new one,
  same transactional id, aborts what was open) and resends that transaction's batches from memory,
  backing off while Kafka is down (``HEALTH`` kafka false); nothing is acked meanwhile. A fenced
  producer means another worker owns the partition: the process exits without acking.

Under at-least-once a lane is one idempotent producer for all partitions, and its "commit" is
waiting for every send's acknowledgement.

A transaction's outputs go out as record batches, one open batch per output partition
(``stream.outbox``: ``create_batch``/``send_batch``, one future per batch instead of a ``send()``
and a future per record); a partition's next batch is handed over when the previous one is
acknowledged (the loop below also wakes up for that), when it is full, or at the seal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from aiokafka.errors import ProducerFenced
from aiokafka.structs import TopicPartition

from stream.health import HEALTH
from stream.outbox import Outbox
from stream.slots import ProducerSlots
from stream.txns import Txn, Unit, mark

log = logging.getLogger(__name__)
EXIT_UNPROCESSABLE = 75


class Lane:
    """One source partition's (or, at-least-once, the process's) queue and transactions."""

    def __init__(self, d, source: TopicPartition | None):
        self.d = d
        self.source = source
        self.queue: asyncio.Queue[Unit] = asyncio.Queue(maxsize=max(1, d.s.delivery_inflight))
        self.slots = d.s.delivery_producers if d.exactly_once else 1
        self.producers = ProducerSlots(d.publisher, d.s.app_id, source, self.slots, d.exactly_once)
        self.open = Txn(0)
        self.sealed: Txn | None = None  # committing in the background
        self.committing: asyncio.Task | None = None
        self._get: asyncio.Task | None = None
        self.busy = False
        self.task = asyncio.create_task(self._run(), name=f"delivery-{source}")
        self.task.add_done_callback(_lane_died)

    @property
    def pending(self) -> list[Unit]:
        """Units sent or being sent and not yet durable (sealed first: that is their order)."""
        return (self.sealed.units if self.sealed else []) + self.open.units

    def idle(self) -> bool:
        return (
            self.queue.empty()
            and not self.pending
            and not self.busy
            and (self._get is None or not self._get.done())
            and (self.committing is None or self.committing.done())
        )

    async def flush(self) -> None:
        while not self.idle():
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        self.task.remove_done_callback(_lane_died)
        for t in (self.task, self.committing, self._get):
            if t is not None and not t.done():
                t.cancel()
                try:
                    await t
                except BaseException:  # cancelled on purpose
                    pass
        await self.producers.stop()

    # --- the loop ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        d = self.d
        while True:
            t = self.open
            if self.slots == 1 and d.exactly_once and self.committing is not None and not self.committing.done():
                await asyncio.wait([self.committing])  # one producer: its next transaction waits for the commit
                continue
            if self._get is None:
                self._get = asyncio.create_task(self.queue.get())
            waiters: set[asyncio.Future] = {self._get}
            if t.outbox is not None:
                waiters.update(t.outbox.waiting())  # a held-back batch follows its predecessor's ack
            timeout = None
            if t.units:
                due = t.due or d._closing or t.events >= d.s.commit_max_events
                left = t.opened_at + d.interval - time.monotonic()
                previous_done = self.committing is None or self.committing.done()
                if (due or left <= 0) and previous_done:
                    d.commits["early" if due else "interval"] += 1
                    await self._seal(t)
                    continue
                if due or left <= 0:
                    waiters.add(self.committing)  # type: ignore[arg-type]
                else:
                    timeout = left
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if t.outbox is not None and t.outbox.ready():
                self.busy = True
                try:
                    await self._retrying(t, lambda t=t: t.outbox.send_ready(), resend=False)  # type: ignore[union-attr]
                finally:
                    self.busy = False
            if not self._get.done():
                continue
            unit, self._get = self._get.result(), None
            self.busy = True
            mark([unit], "dequeued")
            try:
                if not t.units:
                    t.opened_at = time.monotonic()
                t.units.append(unit)
                t.events += unit.events
                await self._retrying(t, lambda t=t, unit=unit: self._send(t, unit), resend=False)
                mark([unit], "sent")
                if self.queue.empty() and self._drained(unit):
                    t.due = True
            finally:
                self.busy = False

    def _drained(self, unit: Unit) -> bool:
        if unit.source is None:  # at-least-once: acks wait for the sends only
            return True
        try:
            return self.d.drained(unit.source, unit.next_offset)
        except Exception:  # no end offset known yet: commit rather than wait
            return True

    async def _seal(self, t: Txn) -> None:
        """Close ``t`` to new batches once its sends are acknowledged (so the next transaction's
        outputs follow its own in every partition), then commit it in the background while the
        next transaction opens on the other producer."""
        self.busy = True
        try:
            mark(t.units, "commit_start")
            self._add_offsets(t)  # its round trips overlap the sends' acknowledgement
            await self._retrying(t, t.acked, resend=True)
            mark(t.units, "acked")
            self.sealed, self.open = t, Txn((t.slot + 1) % self.slots)
            self.committing = asyncio.create_task(self._commit(t), name=f"commit-{self.source}")
            self.committing.add_done_callback(_lane_died)
        finally:
            self.busy = False

    async def _commit(self, t: Txn) -> None:
        start = time.perf_counter()
        if self.d.exactly_once:
            await self._retrying(t, lambda: self._end(t), resend=True)
        mark(t.units, "committed")
        self.sealed = None
        self.d._durable(t.units, time.perf_counter() - start)

    # --- one transaction ----------------------------------------------------------------------------
    async def _send(self, t: Txn, unit: Unit) -> None:
        d = self.d
        p = await self.producers.get(t.slot)
        if d.exactly_once and not t.begun:
            await p.begin_transaction()
            t.begun = True
        if t.outbox is None or t.outbox.producer is not p:
            t.outbox = Outbox(p)
        await t.outbox.add(unit.records, d.publisher.partition_of)

    def _add_offsets(self, t: Txn) -> None:
        """Start adding ``t``'s source offset to it (AddOffsetsToTxn, TxnOffsetCommit) without
        waiting: safe before the sends are acknowledged, since nothing commits until
        :meth:`_end`, and a failed send aborts the whole transaction (offsets included)."""
        p = self.producers[t.slot]
        if not self.d.exactly_once or p is None:
            return
        t.offsets_on = p
        t.offsets = asyncio.ensure_future(
            p.send_offsets_to_transaction({self.source: t.units[-1].next_offset}, self.d.s.app_id)
        )
        t.offsets.add_done_callback(_retrieved)

    async def _end(self, t: Txn) -> None:
        p = self.producers[t.slot]
        await t.acked()  # after a resend: every send acknowledged (raises if one failed)
        if t.offsets is None or t.offsets_on is not p:  # a resend on a fresh producer: add them again
            self._add_offsets(t)
        await t.offsets  # type: ignore[misc]
        mark(t.units, "offsets")
        await p.commit_transaction()
        t.begun = False

    async def _retrying(self, t: Txn, step, resend: bool) -> None:
        """Run ``step`` until it succeeds; after a failure, start over with a fresh producer in
        ``t``'s slot and ``t``'s batches resent (the failed transaction is aborted by the new
        producer's init)."""
        delay, failing_since = 0.1, None
        while True:
            try:
                if failing_since is None:
                    await step()
                    return
                t.outbox = None  # a fresh producer: its own batches
                for u in t.units:
                    await self._send(t, u)
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
                if t.offsets is not None and not t.offsets.done():
                    t.offsets.cancel()
                t.offsets = t.offsets_on = None
                await self.producers.discard(t.slot)
                t.begun = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.d.s.outage_backoff_max_s)


def _retrieved(f: asyncio.Future) -> None:
    """An abandoned offsets request (its producer replaced after a failure) must not log as an
    unretrieved exception; the transaction's retry adds the offsets again."""
    if not f.cancelled():
        f.exception()


def _lane_died(task: asyncio.Task) -> None:
    """A lane must never stop silently: its partition would stall with its events un-acked."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is None and task.get_name().startswith("commit-"):
        return
    log.critical("delivery lane %s stopped (%r); exiting without acking", task.get_name(), exc, exc_info=exc)
    logging.shutdown()
    os._exit(EXIT_UNPROCESSABLE)
