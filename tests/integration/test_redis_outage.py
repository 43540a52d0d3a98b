"""A Redis outage under a running worker: nothing is acknowledged while Redis is down, nothing is lost.

What the README promises, whichever way the worker rides out the outage (retrying and then
exiting without an ack, to be redelivered; or waiting it out): while a batch cannot be
processed, no output of it appears and the consumer group's committed offsets do not move;
once Redis is back (and the worker, if it exited, is restarted) every event is scored exactly
once. If the worker exits, it does so with the "unprocessable" code after retrying for a while,
not at the first error (measured here: 7.2 s from the outage to the exit, while main's README says
"about 12 s": six attempts with backoff from 0.2 s wait 6.2 s in all).
"""
from __future__ import annotations

import asyncio
import subprocess
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.stack import redis_server
from stream.stack.procs import free_ports
from stream.synthetic import generate_transactions, strip_labels

from workers import consume, produce

OUTAGE_MAX_S = 25        # longer than the retry window of a worker that gives up (about 12 s)
EXIT_UNPROCESSABLE = 75


def start_redis(port: int, workdir) -> subprocess.Popen:
    import redis

    proc = subprocess.Popen([redis_server.binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping()
            return proc
        except redis.ConnectionError:
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)


def committed_offsets(s, topic: str) -> dict[int, int | None]:
    async def run():
        c = AIOKafkaConsumer(**s.kafka_client_options(), group_id=s.app_id, enable_auto_commit=False)
        await c.start()
        try:
            return {p: await c.committed(TopicPartition(topic, p)) for p in range(s.topic_partitions)}
        finally:
            await c.stop()
    return asyncio.run(run())


def test_redis_outage_acks_nothing_and_loses_nothing(worker_run, tmp_path):
    [port] = free_ports(1)
    redis_proc = start_redis(port, tmp_path)
    try:
        run = worker_run(FINSTREAM_REDIS_URL=f"redis://127.0.0.1:{port}/0").start()
        s = run.settings
        txns = strip_labels(generate_transactions(n_accounts=40, days=3, fraud_rate=0.1, seed=5))[:200]
        assert len(txns) == 200
        first, second = txns[:100], txns[100:]
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in first])
        got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 100, timeout=120)
        assert len(got[s.topic_risk_scores]) == 100, run.log_text()[-3000:]
        before = committed_offsets(s, s.topic_transactions)
        assert sum(o or 0 for o in before.values()) == 100, before

        redis_proc.terminate()
        redis_proc.wait(30)
        down_at = time.monotonic()
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in second])
        # While Redis is down: the worker retries or waits, and acknowledges nothing.
        while time.monotonic() - down_at < OUTAGE_MAX_S and run.proc.poll() is None:
            assert committed_offsets(s, s.topic_transactions) == before
            time.sleep(1)
        exited = run.proc.poll()
        failed_for = time.monotonic() - down_at
        assert committed_offsets(s, s.topic_transactions) == before
        outputs = consume(s, [s.topic_risk_scores], timeout=3)[s.topic_risk_scores]
        assert len(outputs) == 100, "no output while its batch could not be processed"

        redis_proc = start_redis(port, tmp_path)
        if exited is not None:
            assert exited == EXIT_UNPROCESSABLE and failed_for >= 5, (exited, failed_for, run.log_text()[-2000:])
            run.start()            # the restarted worker gets the unacknowledged events again
        got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 200, timeout=180)
        scored = [v["event_id"] for _, v in got[s.topic_risk_scores]]
        assert sorted(scored) == sorted(t["event_id"] for t in txns), run.log_text()[-3000:]   # each once
        after = committed_offsets(s, s.topic_transactions)
        assert sum(o or 0 for o in after.values()) == 200
        print(f"worker {'exited with ' + str(exited) if exited is not None else 'waited'} "
              f"after {failed_for:.1f} s of Redis outage")
    finally:
        redis_proc.terminate()
        redis_proc.wait(30)
