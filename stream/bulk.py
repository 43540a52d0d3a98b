"""Bulk delivery through Faust: each partition's fetched records reach their job as one chunk.

Why: Faust's own path turns every record into a ``ConsumerMessage``, passes it through the
conductor (flow-control lock, per-topic callback), wraps it in an ``Event``, queues it on the
agent's stream and takes it out again in ``take_events``: 118-176 µs per event in the profiles
(``docs/scaling.md``), against ~16 µs for a plain aiokafka loop. The jobs work on micro-batches
anyway, so here the consumer's drain (the seam Faust gives: ``Consumer._drain_messages``, chosen
through ``app.transport.Consumer``) hands each ``getmany()`` batch of a partition to the job's
:class:`Inbox` whole, and the agent takes chunks instead of events.

Faust stays the runtime: it fetches (its consumer thread), balances partitions, runs the agents,
timers and web pages. What its per-event path did and how it is kept here:

* **order per partition**: one inbox per topic, chunks in fetch order, one agent takes them;
* **backpressure**: the inbox is bounded (``FINSTREAM_BULK_INBOX`` chunks); a full inbox stops the
  drain, so fetching waits for the job as with Faust's stream buffer;
* **un-acked until durable**: a chunk counts as in flight from the moment the agent takes it until
  its delivery unit is durable; only then are its offsets acked into Faust's bookkeeping
  (``_acked``, gaps), so at-least-once commits nothing that is not durable;
* **rebalances**: the inbox is a Faust flow-control queue (cleared when a rebalance starts, like
  the agents' buffers), chunks fetched in an older consumer generation are dropped (Faust seeks every
  partition back to its committed offset after a rebalance, so they are read again), and
  :meth:`BulkConsumer.wait_empty` waits for every chunk in flight to be durable before Faust goes on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import cast

from aiokafka.consumer.fetcher import PartitionRecords
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify

from stream.core.records import SourceRecord

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Chunk:
    """Consecutive records of one partition as fetched (``SourceRecord``s: :class:`SourceRecordResults`)."""

    tp: TP
    records: list
    generation: int
    at: float = field(default_factory=time.time)  # handed over (wall s): stream.stagetrace's "fetched"


class Inbox:
    """A job's bounded queue of chunks, managed by Faust's flow control (cleared on rebalance)."""

    def __init__(self, app, batch_max: int, maxsize: int):
        self.app = app
        self.batch_max = batch_max
        self.queue = app.FlowControlQueue(maxsize=max(1, maxsize), clear_on_resume=True)

    async def put(self, chunk: Chunk) -> None:
        await self.queue.put(chunk)

    async def take(self) -> list[Chunk]:
        """The next chunks, up to ``batch_max`` records (at least one chunk), of the current
        consumer generation only; counted in flight until :meth:`BulkConsumer.chunks_durable`."""
        q = self.queue
        chunks = [await q.get()]
        n = len(chunks[0].records)
        while not q.empty() and n + len(q._queue[0].records) <= self.batch_max:  # type: ignore[attr-defined]
            c = q.get_nowait()
            chunks.append(c)
            n += len(c.records)
        generation = self.app.consumer_generation_id
        chunks = [c for c in chunks if c.generation == generation]
        self.app.consumer.chunks_taken(len(chunks))
        return chunks


class FetchThread(AIOKafkaConsumerThread):
    """Faust's consumer thread with a shorter broker-side fetch wait (``app.fetch_max_wait_ms``,
    from ``FINSTREAM_KAFKA_FETCH_MAX_WAIT_MS``). Faust hard-codes ``fetch_max_wait_ms=1500``, and
    aiokafka keeps one fetch in flight per broker: a fetch for partitions with nothing new parks
    on the broker for up to 1.5 s while the other partitions' records wait behind it (the ~1.5 s
    mode of the paced latency, ``docs/scaling.md``)."""

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms:
            consumer._fetch_max_wait_ms = wait_ms  # read when its fetcher starts (consumer.start)
        return consumer

    async def on_start(self) -> None:
        await super().on_start()  # starts the aiokafka consumer, which creates its fetcher
        topics = frozenset(getattr(self.app, "inboxes", None) or ())
        fetcher = getattr(self._consumer, "_fetcher", None)
        if topics and fetcher is not None and not fetcher._records and _decodes_raw(fetcher):
            fetcher._records = SourceRecordResults(topics)
            log.info("fetched records of %s unpacked as SourceRecords", ", ".join(sorted(topics)))

    async def seek_to_committed(self):
        """Seek to the committed offsets, and a partition with none to its beginning.

        Why: after a rebalance interrupted a fetch, Faust drops what it fetched and relies on this
        seek to read it again, but aiokafka seeks only partitions with a committed offset above 0,
        so a partition with nothing committed yet (a new topic's first records) kept its position
        past the dropped records: the bench-scaleout stall (docs/reliability.md). Nothing committed
        means the group starts at the beginning (``consumer_auto_offset_reset="earliest"``)."""
        committed = await super().seek_to_committed()
        fresh = [tp for tp, offset in committed.items() if not offset or offset < 0]
        if fresh:
            await self.call_thread(self._ensure_consumer().seek_to_beginning, *fresh)
        return committed


def _decodes_raw(fetcher) -> bool:
    """The fast path builds records from the wire's bytes: only without (de)serializers (Faust's raw
    topics) and with the aiokafka internals it was written against (pinned in pyproject.toml)."""
    return (
        fetcher._key_deserializer is None
        and fetcher._value_deserializer is None
        and callable(getattr(PartitionRecords, "_consumer_record", None))
        and isinstance(fetcher._records, collections.OrderedDict)
    )


def _source_record(tp, record, _new=tuple.__new__, _cls=SourceRecord) -> SourceRecord:
    """What the jobs read of a fetched record, built by the fetcher itself: aiokafka's timestamps
    are milliseconds, the wire's key and value bytes are the jobs' (raw topics)."""
    return _new(_cls, (tp.topic, tp.partition, record.offset, record.key, record.value, record.timestamp))


class SourceRecordResults(collections.OrderedDict):
    """The aiokafka fetcher's table of fetched partition results (``Fetcher._records``), which makes
    every result of a job's topic unpack into :class:`SourceRecord`s instead of ``ConsumerRecord``s.

    Why: aiokafka builds a ``ConsumerRecord`` (an 11-field dataclass, headers copied into a tuple)
    per record in Faust's consumer thread, and :func:`source_records` then built a ``SourceRecord``
    from each: two objects and two Python calls per record (1.3 -> 0.4-0.6 µs per record measured,
    ``docs/scaling.md``). Only the per-record constructor changes: aiokafka still iterates the
    batches, checks CRCs, skips control batches and aborted transactions and tracks positions.
    Topics without an inbox keep ``ConsumerRecord``s (Faust's own per-message path reads all their
    fields)."""

    def __init__(self, topics: frozenset[str]):
        super().__init__()
        self.topics = topics

    def __setitem__(self, tp, result) -> None:
        records = getattr(result, "_partition_records", None)
        if records is not None and tp.topic in self.topics:
            records._consumer_record = _source_record  # looked up per record on the instance
        super().__setitem__(tp, result)


class BulkConsumer(FaustConsumer):
    """Faust's aiokafka consumer whose drain hands whole partition batches to the jobs' inboxes
    (``app.inboxes``: topic -> :class:`Inbox`); a topic without an inbox takes Faust's own path."""

    _inflight = 0
    _idle: asyncio.Event | None = None

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FetchThread(self, loop=self.loop, beacon=self.beacon)

    # --- in flight / acks (called by the agents) ------------------------------------------------
    def chunks_taken(self, n: int) -> None:
        if self._idle is None:
            self._idle = asyncio.Event()
        self._inflight += n
        if self._inflight:
            self._idle.clear()

    def chunks_durable(self, chunks: list[Chunk]) -> None:
        """Ack every offset the chunks span (control records between them included) in Faust's
        bookkeeping, as ``Consumer.ack`` does per message, and count them out of flight."""
        with ack_lock:
            for c in chunks:
                tp = c.tp
                if not self.app.topics.acks_enabled_for(tp.topic):
                    continue
                committed = self._committed_offset[tp]
                first = c.records[0].offset if committed is None else max(committed, c.records[0].offset)
                index = self._acked_index[tp]
                new = [o for o in range(first, c.records[-1].offset + 1) if o not in index]
                index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)
            notify(self._waiting_for_ack)
        self._inflight -= len(chunks)
        if self._inflight <= 0 and self._idle is not None:
            self._idle.set()

    async def wait_empty(self) -> None:
        """Faust's wait for un-acked events (rebalance, stop), first for the chunks in flight."""
        while self._inflight > 0 and not self.should_stop and self._idle is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=1.0)
            except TimeoutError:
                self.log.info("wait_empty: %d chunks not durable yet", self._inflight)
        await super().wait_empty()

    # --- the drain --------------------------------------------------------------------------------
    async def _drain_messages(self, fetcher) -> None:  # pragma: no cover (runs in every worker test)
        inboxes: dict[str, Inbox] = getattr(self.app, "inboxes", None) or {}
        if not inboxes:
            return await super()._drain_messages(fetcher)
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        commit_every = self._commit_every
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                records, active = await self._wait_next_records(1.0)
                generation = self.app.consumer_generation_id
                if not records or self.should_stop:
                    continue
                if not self.flow_active:  # as Faust's getmany: a rebalance interrupted this fetch
                    self.log.info("rebalance interrupted a fetch: %s read again after the seek", sorted(records))
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning("seek while flow not active failed: %r", exc)
                    continue
                for tp, recs in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        break
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    await self._hand_over(tp, recs, inboxes.get(tp.topic), generation)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, tp: TP, recs: list, inbox: Inbox | None, generation: int) -> None:
        """One partition's fetched records to its inbox (in pieces of at most ``batch_max``), with
        Faust's read-offset and gap bookkeeping done once per piece instead of per record."""
        read = self._read_offset[tp]
        if read is not None and recs[0].offset < read:  # already handed over (Faust drops these too)
            recs = [r for r in recs if r.offset >= read]
            if not recs:
                return
        if read and recs[0].offset - read > 1 and self.app.topics.acks_enabled_for(tp.topic):
            await self._add_gap(tp, read + 1, recs[0].offset)
        if inbox is None:  # not a job's topic: Faust's own per-message path
            for r in recs:
                await self.wait_first(self.callback(self._to_message(tp, r)), self.suspend_flow.wait())
                if not self.flow_active:
                    return
                self._read_offset[tp] = r.offset
            return
        step = inbox.batch_max
        for i in range(0, len(recs), step):
            piece = recs[i : i + step]
            if not await self._offer(inbox, Chunk(tp, piece, generation)):  # rebalancing: read again after the seek
                return
            self._read_offset[tp] = piece[-1].offset

    async def _offer(self, inbox: Inbox, chunk: Chunk) -> bool:
        """Put ``chunk`` in the inbox, waiting for room; False if a rebalance stopped the flow.

        Why not ``wait_first(put, suspend_flow)`` alone: a rebalance clears Faust's flow-control
        queues, and the inbox's ``clear`` cancels a put waiting for room (a full inbox: the job is
        slow). That ``CancelledError`` escaped ``wait_first`` and ended the drain mid-rebalance;
        Faust's fetcher then crashed the worker, or left it in the group reading nothing (the
        scale-out bench's stalled partitions, docs/reliability.md). A put cancelled while this task
        is not being cancelled is the clear: the chunk is dropped like the inbox's others."""
        while True:
            try:
                await self.wait_first(inbox.put(chunk), self.suspend_flow.wait())
                return self.flow_active
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling() or self.should_stop:
                    raise  # the drain itself is being stopped
                if not self.flow_active:
                    self.log.info(
                        "rebalance cleared the inbox under a waiting put: %s read again after the seek", chunk.tp
                    )
                    return False
                # cleared as the flow resumed: the chunk follows the seek, so it is offered again


def source_records(chunks: list[Chunk]) -> list[SourceRecord]:
    """The jobs' ``SourceRecord``s of some chunks: as fetched (:class:`SourceRecordResults`), or built
    from aiokafka ``ConsumerRecord``s (fetched before the fast path was installed; aiokafka
    timestamps are already milliseconds)."""
    out: list[SourceRecord] = []
    for c in chunks:
        recs = c.records
        if recs and type(recs[0]) is SourceRecord:
            out += recs
        else:
            out += [SourceRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp) for r in recs]
    return out
