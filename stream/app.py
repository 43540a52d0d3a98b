"""The Faust adapter: three agents, each feeding micro-batches of raw events to its job.

Faust consumes, balances partitions and supervises agents; it only moves bytes here (raw
serializers, no Records, no Tables). Parsing, state, scoring and output records are the
engine's (``stream.serving``); delivery is ``stream.publisher``'s, which owns the Kafka
transaction because Faust's exactly-once does not cover our sends (see that module).
A batch's events are acked only after its outputs are durable. A failing batch is retried
(state updates are fenced, so a retry is harmless); if it keeps failing the process exits
without acking, so nothing is committed past it and Kafka redelivers it to the next worker.
"""
from __future__ import annotations

import logging

import asyncio
import os
import time

import faust
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer

from stream import observe                      # observe: /health /ready /metrics, stage timers
from stream.core.records import SourceRecord
from stream.metrics import METRICS              # observe
from stream.publisher import Publisher
from stream.settings import Settings

RETRIES = 6          # attempts per batch step, with exponential backoff from 0.2 s (6.2 s of waits in all)
EXIT_UNPROCESSABLE = 75

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


class TransactionOwnedOffsets(FaustConsumer):
    """Faust's consumer for exactly-once: the publisher's transactions commit the group's offsets,
    so Faust commits none. Faust's own commit of acked offsets (on its interval, on rebalance, on
    errors) is not ordered with our transactions and can land behind one, moving the group back:
    after a kill, outputs already committed would be produced again (a read_committed consumer
    saw 20 outputs twice in a kill test before this)."""

    async def _commit(self, offsets) -> bool:
        # keep Faust's stalled-commit warning about the agent (acks stopping), not about this
        self._thread.tp_last_committed_at.update(dict.fromkeys(offsets, time.monotonic()))
        return False


def create_app(s: Settings, jobs: dict) -> faust.App:
    """``jobs`` maps input topic name -> Job (built by ``stream.worker``)."""
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(s),
        store="memory://",
        processing_guarantee="at_least_once",   # the guarantee is the publisher's, not Faust's
        topic_partitions=s.topic_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=s.worker_web_enabled,
        web_port=s.worker_web_port,
        web_bind="127.0.0.1",
        producer_linger_ms=5,
        stream_buffer_maxsize=max(4096, 2 * s.batch_max),
        # A killed worker's partitions move to the others after this long, not Faust's default 60 s.
        broker_commit_interval=s.commit_interval_ms / 1000.0,   # at-least-once acks; see settings
        broker_session_timeout=s.kafka_session_timeout_s,
        broker_heartbeat_interval=max(1.0, s.kafka_session_timeout_s / 4),
    )
    publisher = Publisher(s)
    if publisher.exactly_once:
        app.transport.Consumer = TransactionOwnedOffsets
    else:   # Faust commits: its record of what it committed (initialised from the broker on assignment)
        publisher.committed_elsewhere = lambda topic, partition: app.consumer._committed_offset.get(
            faust.types.TP(topic, partition))
    for job in jobs.values():
        job.committed = publisher.committed
    observe.instrument(jobs)                    # observe: stage timers around state and models
    observe.install(app, s, jobs)               # observe: routes, readiness probes, scrape-time metrics

    @app.on_before_shutdown.connect
    async def close_publisher(app, **kwargs) -> None:
        await publisher.close()

    async def handle(job, events) -> None:
        # Faust's message.timestamp is in seconds; SourceRecord wants the Kafka milliseconds.
        batch = [SourceRecord(e.message.topic, e.message.partition, e.message.offset,
                              e.message.key, e.message.value,
                              int(e.message.timestamp * 1000) if e.message.timestamp else None) for e in events]
        clock, outputs, ok = METRICS.batch_started(job.slot), [], False     # observe
        publisher.track(batch)
        try:
            outputs = await _retry(job.process, batch)
            clock.mark("processed")                                          # observe
            # Partitions commit concurrently, each retried alone: a retry never re-sends a committed one.
            await asyncio.gather(*(_retry(publisher.publish, tp, outs, nxt)
                                   for tp, outs, nxt in publisher.plan(batch, outputs)))
            clock.mark("delivered")                                          # observe
            ok = True
        finally:
            METRICS.batch_done(clock, batch, outputs, ok)                    # observe: once per batch

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

    for topic_name, job in jobs.items():
        source = app.topic(topic_name, key_serializer="raw", value_serializer="raw", partitions=s.topic_partitions)

        async def agent(stream, job=job):
            async for events in stream.take_events(s.batch_max, within=s.batch_within_s):
                await handle(job, events)

        app.agent(source, name=f"{job.slot}-agent")(agent)
    return app


async def _retry(fn, *args):
    delay = 0.2
    for attempt in range(1, RETRIES + 1):
        try:
            return await fn(*args)
        except Exception:
            if attempt == RETRIES:
                log.critical("giving up on a batch after %d attempts; exiting without acking it", attempt,
                             exc_info=True)
                logging.shutdown()
                os._exit(EXIT_UNPROCESSABLE)   # no ack, no commit: the batch is redelivered
            log.warning("batch step failed (attempt %d/%d), retrying in %.1fs", attempt, RETRIES, delay, exc_info=True)
            await asyncio.sleep(delay)
            delay *= 2
