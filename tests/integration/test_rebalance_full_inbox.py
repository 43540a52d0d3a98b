"""A rebalance while the worker's inbox is full must not stop its fetching (the stalled partitions
of ``make bench-scaleout``, docs/reliability.md).

When the job is slow (here: Redis writes held by ``CLIENT PAUSE WRITE``, a real Redis; in the
bench, a first batch on a cold Redis Cluster) the consumer's drain waits in ``Inbox.put`` for room.
A rebalance then clears Faust's flow-control queues, and the inbox's ``clear`` cancels that waiting
put: the ``CancelledError`` escaped ``wait_first`` and ended the drain in the middle of the
rebalance. The worker stays in the group and gets partitions again, and must still read them all.
"""

from __future__ import annotations

import time

import redis

from stream.tools.synthetic import generate_transactions, strip_labels
from tests.integration.workers import consume, produce

REVOKED = "Revoking previously assigned partitions \\n"  # a revocation of partitions it held


def test_a_rebalance_while_the_inbox_is_full_leaves_no_partition_unread(worker_run):
    tight = {"FINSTREAM_BULK_INBOX": "1", "FINSTREAM_BATCH_MAX": "1", "FINSTREAM_TOPIC_PARTITIONS": "4"}
    first = worker_run(**tight).start()
    s = first.settings
    second = worker_run(**tight)
    second.env, second.settings = dict(first.env), s  # same group, same topics
    txns = strip_labels(generate_transactions(n_accounts=200, days=8, fraud_rate=0.1, seed=5))[:3000]
    assert len(txns) == 3000
    produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns[:200]])
    consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 50, timeout=120, committed=False)
    r = redis.Redis.from_url(s.redis_url.get_secret_value())
    r.client_pause(40_000, all=False)  # the job's writes wait; reads and pings answer
    try:
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns[200:1200]])  # the inbox fills
        time.sleep(1.0)
        second.start()
        deadline = time.monotonic() + 40
        while REVOKED not in first.log_text():  # the rebalance starts while the first worker's inbox is full
            assert time.monotonic() < deadline and second.proc.poll() is None, second.log_text()[-3000:]
            time.sleep(0.2)
    finally:
        r.client_unpause()
    produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns[1200:]])
    got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 3000, timeout=60)
    scored = {v["event_id"] for _, v in got[s.topic_risk_scores]}
    logs = first.log_text() + second.log_text()
    assert first.proc.poll() is None and second.proc.poll() is None, logs[-3000:]
    missing = {t["event_id"] for t in txns} - scored
    assert not missing, f"{len(missing)} of 3000 events never scored after the rebalance:\n{first.log_text()[-4000:]}"
    assert "Restarting on rebalance" not in logs, "the drain ended during the rebalance"
    # the condition was met: the rebalance found the drain waiting for room in the inbox
    assert "rebalance cleared the inbox under a waiting put" in first.log_text()
