"""Bulk delivery (``stream.bulk``) keeps Faust's offset bookkeeping: under at-least-once the records
reach the jobs as fetched chunks, never as Faust messages, and Faust must still commit every
offset once its outputs are durable (the chunk's offsets are acked as a range, control records
between producer transactions included), or a restart would replay everything."""

from __future__ import annotations

import asyncio
import time

from stream.tools.synthetic import generate_transactions, strip_labels
from tests.integration.workers import consume, produce


async def _group_offsets(s, group: str, topic: str) -> tuple[dict, dict]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**s.kafka_client_options())
    c = AIOKafkaConsumer(**s.kafka_client_options())
    await admin.start()
    await c.start()
    try:
        committed = {
            tp.partition: m.offset
            for tp, m in (await admin.list_consumer_group_offsets(group)).items()
            if tp.topic == topic
        }
        tps = [TopicPartition(topic, p) for p in range(s.topic_partitions)]
        ends = {tp.partition: off for tp, off in (await c.end_offsets(tps)).items()}
        return committed, ends
    finally:
        await c.stop()
        await admin.close()


def test_at_least_once_bulk_acks_commit_every_offset(worker_run):
    run = worker_run(FINSTREAM_PROCESSING_GUARANTEE="at_least_once", FINSTREAM_COMMIT_INTERVAL_MS="200").start()
    s = run.settings
    txns = strip_labels(generate_transactions(n_accounts=100, days=8, fraud_rate=0.1, seed=5))[:600]
    assert len(txns) == 600
    for i in range(0, 600, 150):  # several producer batches: offsets fetched in several chunks
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns[i : i + 150]])
    got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 600, timeout=120)
    assert len({v["event_id"] for _, v in got[s.topic_risk_scores]}) == 600, run.log_text()[-3000:]
    deadline = time.monotonic() + 60
    while True:
        committed, ends = asyncio.run(_group_offsets(s, s.app_id, s.topic_transactions))
        if committed and committed == ends or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run.proc.poll() is None, run.log_text()[-3000:]
    assert "unpacked as SourceRecords" in run.log_text()  # the fetcher's fast path (stream.bulk) was in use
    assert sum(ends.values()) >= 600
    assert committed == ends, f"committed {committed} != end offsets {ends}"
