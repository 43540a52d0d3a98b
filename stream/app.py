"""The Faust adapter: three agents, each feeding micro-batches of raw events to its job.

Faust only moves bytes here (raw serializers, no Records, no Tables): parsing, state, scoring
and output records are the engine's (``stream.serving``), which the bench and tests drive too.
Outputs go to the source's partition number, so per-key order carries over and, under
exactly-once, Faust's transactional producer for that partition carries them.
"""
from __future__ import annotations

import logging

import faust

from stream.core.records import OutputRecord, SourceRecord
from stream.settings import Settings

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


def create_app(s: Settings, jobs: dict) -> faust.App:
    """``jobs`` maps input topic name -> Job (built by ``stream.worker``)."""
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(s),
        store="memory://",
        processing_guarantee=s.processing_guarantee,
        topic_partitions=s.topic_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=s.worker_web_enabled,
        web_port=s.worker_web_port,
        web_bind="127.0.0.1",
        producer_linger_ms=5,
        stream_buffer_maxsize=max(4096, 2 * s.batch_max),
    )
    out_topics: dict[str, faust.TopicT] = {}

    def out_topic(name: str) -> faust.TopicT:
        if name not in out_topics:
            out_topics[name] = app.topic(name, key_serializer="raw", value_serializer="raw",
                                         partitions=s.topic_partitions)
        return out_topics[name]

    async def publish(records: list[OutputRecord]) -> None:
        for o in records:
            part = None if o.partition is None else o.partition % s.topic_partitions
            await out_topic(o.topic).send(key=o.key, value=o.value, partition=part)

    for topic_name, job in jobs.items():
        source = app.topic(topic_name, key_serializer="raw", value_serializer="raw", partitions=s.topic_partitions)

        async def agent(stream, job=job):
            async for events in stream.take_events(s.batch_max, within=s.batch_within_s):
                batch = [SourceRecord(e.message.topic, e.message.partition, e.message.offset,
                                      e.message.key, e.message.value, e.message.timestamp) for e in events]
                await publish(await job.process(batch))

        app.agent(source, name=f"{job.slot}-agent")(agent)
    return app
