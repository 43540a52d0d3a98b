"""A second worker joins the group mid-stream: the first hands over partitions whose transactions
are open across batches (stream.delivery), and every event is still scored exactly once.

On revocation Faust waits for every message it gave the agents to be acked (``wait_empty``); the
worker acks only after the batch's transaction committed, then drops the revoked partitions'
producers (``Delivery.release``). Nothing may be lost, repeated to a read_committed consumer, or
end with a worker exiting because its producer was fenced.
"""

from __future__ import annotations

import time

from stream.tools.synthetic import generate_transactions, strip_labels
from tests.integration.workers import consume, produce


def test_a_joining_worker_takes_over_partitions_and_every_event_is_scored_once(worker_run):
    first = worker_run(FINSTREAM_COMMIT_INTERVAL_MS="1000").start()  # long-open transactions
    s = first.settings
    second = worker_run(FINSTREAM_COMMIT_INTERVAL_MS="1000")
    second.env, second.settings = dict(first.env), s  # same group, same topics
    txns = strip_labels(generate_transactions(n_accounts=200, days=8, fraud_rate=0.1, seed=11))[:3000]
    assert len(txns) == 3000
    produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns[:1000]])
    consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 300, timeout=120, committed=False)
    second.start()
    # keep events flowing (and transactions open) while the group rebalances: a trickle until the
    # second worker has partitions (its start-up takes 2-6 s depending on the machine's load), so
    # that at least 1,000 events are left for both workers after the rebalance
    rest, i = txns[1000:], 0
    deadline = time.monotonic() + 180
    while "Setting newly assigned partitions" not in second.log_text() and i < 1000:
        assert time.monotonic() < deadline and second.proc.poll() is None, second.log_text()[-3000:]
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in rest[i : i + 10]])
        i += 10
        time.sleep(0.25)
    for j in range(i, len(rest), 100):
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in rest[j : j + 100]])
        time.sleep(0.25)
    got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 3000, timeout=240)
    time.sleep(3)
    got = consume(s, [s.topic_risk_scores], timeout=10)
    scored = [v["event_id"] for _, v in got[s.topic_risk_scores]]
    assert first.proc.poll() is None and second.proc.poll() is None, (first.log_text() + second.log_text())[-3000:]
    first.stop()
    second.stop()
    logs = first.log_text() + second.log_text()
    assert "fenced by another worker" not in logs
    assert len(scored) == len(set(scored)), "an output visible twice after the rebalance"
    assert sorted(scored) == sorted(t["event_id"] for t in txns), logs[-3000:]
    # both took part: each committed transactions of its own, and the first gave partitions up
    for run in (first, second):
        [line] = [ln for ln in run.log_text().splitlines() if "delivery commits by trigger" in ln]
        assert "{}" not in line, line
    assert first.log_text().count("Setting newly assigned partitions") >= 2
