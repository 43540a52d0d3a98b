"""The Faust adapter: three agents, each feeding micro-batches of raw events to its job.

Faust consumes, balances partitions, supervises agents, serves the web pages and runs the timers;
it only moves bytes here (raw serializers, no Records, no Tables). Parsing, state, scoring and
output records are the engine's (``stream.serving``); delivery is ``stream.delivery``'s, which owns
the Kafka transactions because Faust's exactly-once does not cover our sends (``stream.publisher``).

Records reach the jobs in bulk (``stream.bulk``): the consumer's drain hands each fetched
partition batch to the job's inbox, without Faust's per-event message/Event/stream path; the agents
take chunks. The stages overlap: an agent queues its processed batch on the delivery lanes and
takes the next chunks at once, while the lanes commit the earlier ones (bounded, so a slow broker
slows the agent). A chunk stays in flight, un-acked, until its outputs are durable: only the
delivery's ``on_durable`` acks it (``BulkConsumer.chunks_durable``), so Faust commits no offset past
a batch that is not durable and, on a rebalance, waits for it (``wait_empty``).
Outages are waited out (``stream.runtime`` for Redis, ``stream.delivery`` for Kafka).
"""

from __future__ import annotations

import logging
import time

import faust
from faust.sensors import Monitor

from stream import (
    observe,  # observe: /health /ready /metrics, stage timers
    runtime,
)
from stream.bulk import BulkConsumer, Inbox, source_records
from stream.delivery import Delivery, drained_by_highwater
from stream.metrics import METRICS  # observe
from stream.settings import Settings
from stream.stagetrace import now_ms

log = logging.getLogger(__name__)


def _credentials(s: Settings):
    if s.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=s.kafka_sasl_username,
            password=s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None,
            mechanism=s.kafka_sasl_mechanism,
            ssl_context=s.kafka_client_options().get("ssl_context"),
        )
    if s.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(s.kafka_client_options()["ssl_context"])
    return None


class TransactionOwnedOffsets(BulkConsumer):
    """Faust's consumer for exactly-once: the delivery's transactions commit the group's offsets,
    so Faust commits none. Faust's own commit of acked offsets (on its interval, on rebalance, on
    errors) is not ordered with our transactions and can land behind one, moving the group back:
    after a kill, outputs already committed would be produced again (a read_committed consumer
    saw 20 outputs twice in a kill test before this)."""

    async def _commit(self, offsets) -> bool:
        # keep Faust's stalled-commit warning about the agent (acks stopping), not about this
        self._thread.tp_last_committed_at.update(dict.fromkeys(offsets, time.monotonic()))
        return False


class BatchOnlyMonitor(Monitor):
    """Faust's monitor without its per-event bookkeeping (several dict updates and clock reads per
    record in the conductor and the stream). The worker's metrics are per batch
    (``stream.metrics``); what Faust's own monitor keeps per partition (end offsets, commits) stays."""

    def on_message_in(self, tp, offset, message) -> None:
        pass

    def on_stream_event_in(self, tp, offset, stream, event):
        return None

    def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
        pass

    def on_message_out(self, tp, offset, message) -> None:
        pass


def create_app(s: Settings, jobs: dict) -> faust.App:
    """``jobs`` maps input topic name -> Job (built by ``stream.worker``)."""
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(s),
        monitor=BatchOnlyMonitor(),
        store="memory://",
        processing_guarantee="at_least_once",  # the guarantee is the delivery's, not Faust's
        topic_partitions=s.topic_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=s.worker_web_enabled,
        web_port=s.worker_web_port,
        web_bind="127.0.0.1",
        producer_linger_ms=5,
        cython_optimizations=True,  # Faust's compiled stream iterator (faust/_cython)
        stream_buffer_maxsize=max(4096, 4 * s.batch_max),
        consumer_max_fetch_size=4 * 1024 * 1024,
        # at-least-once: how often acked offsets are committed. Under exactly-once the transactions
        # carry the offsets and FINSTREAM_COMMIT_INTERVAL_MS is theirs (stream.delivery); Faust keeps
        # its default here rather than committing every 100 ms beside them.
        broker_commit_interval=s.commit_interval_s if s.processing_guarantee == "at_least_once" else 2.8,
        # A killed worker's partitions move to the others after this long, not Faust's default 60 s.
        broker_session_timeout=s.kafka_session_timeout_s,
        broker_heartbeat_interval=max(1.0, s.kafka_session_timeout_s / 4),
    )

    # a partition the consumer has read to its end commits its open transaction at once
    delivery = app.delivery = Delivery(s, drained=drained_by_highwater(lambda tp: app.consumer.highwater(tp)))
    app.transport.Consumer = TransactionOwnedOffsets if delivery.exactly_once else BulkConsumer
    if not delivery.exactly_once:
        # Faust commits: its record of what it committed (initialised from the broker on assignment)
        delivery.publisher.committed_elsewhere = lambda topic, partition: app.consumer._committed_offset.get(
            faust.types.TP(topic, partition)
        )
    for job in jobs.values():
        job.committed = delivery.committed  # the snapshot watermark (stream.core.fencing)
    observe.instrument(jobs)  # observe: stage timers around state and models
    observe.install(app, s, jobs)  # observe: routes, readiness probes, scrape-time metrics

    @app.on_before_shutdown.connect
    async def close_delivery(app, **kwargs) -> None:
        await delivery.close()

    @app.on_partitions_revoked.connect
    async def release_revoked(app, revoked, **kwargs) -> None:
        await delivery.release(revoked)  # Faust waited for their batches to be durable

    async def handle(job, chunks) -> None:
        consumer = app.consumer
        batch = source_records(chunks)
        if not batch:
            return
        # a partition's first offset since start is committed: each chunk's first record suffices
        delivery.publisher.track([c.records[0] for c in chunks if c.records])
        clock = METRICS.batch_started(job.slot)  # observe
        taken = now_ms()
        outputs = await runtime.process(job, batch, s.outage_backoff_max_s)
        clock.mark("processed")  # observe
        METRICS.detach(clock)  # the next batch starts before this one is durable
        if delivery.trace is None:
            units = delivery.plan(batch, outputs)
        else:  # FINSTREAM_STAGE_TRACE_DIR: latency diagnosis (stream.stagetrace)
            fetched = [c.at * 1000.0 for c in chunks for _ in c.records]
            units = delivery.plan(batch, outputs, fetched, {"taken": taken, "processed": now_ms()})
        by_tp: dict = {}
        for c in chunks:
            by_tp.setdefault((c.tp.topic, c.tp.partition), []).append(c)
        left = [len(units)]

        def on_durable(mine):
            def done(commit_s: float) -> None:
                consumer.chunks_durable(mine)
                clock.longest("commit", commit_s)  # observe
                left[0] -= 1
                if left[0] == 0:
                    clock.mark("delivered")  # observe
                    METRICS.batch_done(clock, batch, outputs, True)  # observe: once per batch

            return done

        for u in units:
            u.on_durable = on_durable(chunks if u.source is None else by_tp[(u.source.topic, u.source.partition)])
        await delivery.submit(units)

    registries = {id(j.models): j.models for j in jobs.values()}

    @app.timer(interval=s.model_poll_s)
    async def watch_models() -> None:
        for registry in registries.values():
            registry.maybe_reload()

    def counts() -> dict:
        return {job.slot: dict(job.counts) for job in jobs.values()}

    @app.timer(interval=60.0)
    async def log_counts() -> None:
        log.info("counts %s", counts())

    @app.page("/counts/")
    async def counts_page(web, request):
        """What each job has seen: events, outputs, dead letters, warming-up windows, alerts."""
        return web.json(counts())

    app.inboxes = {}
    app.fetch_max_wait_ms = s.kafka_fetch_max_wait_ms
    for topic_name, job in jobs.items():
        source = app.topic(topic_name, key_serializer="raw", value_serializer="raw", partitions=s.topic_partitions)
        inbox = app.inboxes[topic_name] = Inbox(app, s.batch_max, s.bulk_inbox)

        async def agent(stream, job=job, inbox=inbox):
            """Faust subscribes and supervises; the records arrive through the inbox, not ``stream``."""
            while True:
                await handle(job, await inbox.take())

        app.agent(source, name=f"{job.slot}-agent")(agent)
    return app
