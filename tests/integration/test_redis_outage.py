"""A Redis outage under a running worker: it waits the outage out, acknowledges nothing, loses nothing.

Issue 7 item 4, worker side: while Redis is down (stopped here for longer than the old retry window
of about 6.5 s) the worker neither exits nor acks: no output of the held batch appears, the
consumer group's committed offsets do not move, and ``/ready`` answers 503 naming Redis. Once
Redis is back the same process carries on: ``/ready`` is 200 again and every event is scored
exactly once (exactly-once, read_committed).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.stack import redis_server
from stream.stack.procs import free_ports
from stream.tools.synthetic import generate_transactions, strip_labels
from tests.integration.workers import consume, produce

OUTAGE_S = 15  # Redis stays down this long: more than twice the old give-up time (6.5 s)


def ready_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def start_redis(port: int, workdir) -> subprocess.Popen:
    import redis

    proc = subprocess.Popen(
        [
            redis_server.binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
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


def test_redis_outage_is_waited_out_acks_nothing_and_loses_nothing(worker_run, tmp_path):
    port, web_port = free_ports(2)
    redis_proc = start_redis(port, tmp_path)
    try:
        run = worker_run(
            FINSTREAM_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            FINSTREAM_WORKER_WEB_ENABLED="true",
            FINSTREAM_WORKER_WEB_PORT=str(web_port),
            FINSTREAM_OUTAGE_BACKOFF_MAX_S="2",
        ).start()
        s = run.settings
        txns = strip_labels(generate_transactions(n_accounts=40, days=3, fraud_rate=0.1, seed=5))[:200]
        assert len(txns) == 200
        first, second = txns[:100], txns[100:]
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in first])
        got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 100, timeout=120)
        assert len(got[s.topic_risk_scores]) == 100, run.log_text()[-3000:]
        before = committed_offsets(s, s.topic_transactions)
        assert sum(o or 0 for o in before.values()) == 100, before
        deadline = time.monotonic() + 60
        while ready_status(web_port) != 200:
            assert time.monotonic() < deadline, f"worker never ready\n{run.log_text()[-3000:]}"
            time.sleep(0.3)

        redis_proc.terminate()
        redis_proc.wait(30)
        down_at = time.monotonic()
        produce(s, s.topic_transactions, [(t["account_id"], t) for t in second])
        # While Redis is down: the worker waits, reports not ready, and acknowledges nothing.
        statuses = []
        while time.monotonic() - down_at < OUTAGE_S:
            assert run.proc.poll() is None, f"worker exited during the outage\n{run.log_text()[-3000:]}"
            assert committed_offsets(s, s.topic_transactions) == before
            statuses.append(ready_status(web_port))
            time.sleep(1)
        assert run.proc.poll() is None, run.log_text()[-3000:]
        assert 503 in statuses, f"/ready never said 503 during the outage: {statuses}"
        assert committed_offsets(s, s.topic_transactions) == before
        outputs = consume(s, [s.topic_risk_scores], timeout=3)[s.topic_risk_scores]
        assert len(outputs) == 100, "no output while its batch could not be processed"

        redis_proc = start_redis(port, tmp_path)
        back_at = time.monotonic()
        got = consume(s, [s.topic_risk_scores], until=lambda g: len(g[s.topic_risk_scores]) >= 200, timeout=180)
        scored = [v["event_id"] for _, v in got[s.topic_risk_scores]]
        assert sorted(scored) == sorted(t["event_id"] for t in txns), run.log_text()[-3000:]  # each once
        took = time.monotonic() - back_at
        after = committed_offsets(s, s.topic_transactions)
        assert sum(o or 0 for o in after.values()) == 200
        deadline = time.monotonic() + 30
        while ready_status(web_port) != 200:
            assert time.monotonic() < deadline, f"not ready again after the outage\n{run.log_text()[-3000:]}"
            time.sleep(0.3)
        assert run.proc.poll() is None
        print(
            f"worker waited out {OUTAGE_S} s of Redis outage (/ready: {statuses.count(503)} x 503), "
            f"all 200 scored once, {took:.1f} s after Redis was back"
        )
    finally:
        redis_proc.terminate()
        redis_proc.wait(30)
