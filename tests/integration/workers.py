"""End-to-end helpers: a real worker process on the session stack, with its own topics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from stream.settings import REPO_ROOT, Settings, settings_from_env, topic_env
from stream.stack import procs

MODEL_DIR = Path(os.environ.get("FINSTREAM_TEST_MODEL_DIR", REPO_ROOT / "onnx_models"))


class WorkerRun:
    """One isolated deployment: unique app id, topics and Redis prefix; a worker subprocess."""

    def __init__(self, stack: Settings, tmp: Path, model_dir: Path | None = None, **extra_env):
        tag = uuid.uuid4().hex[:8]
        self.env = {
            **os.environ,
            "FINSTREAM_APP_ID": f"fs-test-{tag}",
            "FINSTREAM_REDIS_KEY_PREFIX": f"t{tag}",
            "FINSTREAM_WORKER_WEB_ENABLED": "false",
            "FINSTREAM_TOPIC_PARTITIONS": "2",
            "FINSTREAM_MODEL_DIR": str(model_dir or MODEL_DIR),
            "FINSTREAM_MODEL_POLL_S": "0.5",
            "FINSTREAM_PUBLISH_RISK_SCORES": "true",
            "FINSTREAM_LOG_LEVEL": "info",
        }
        self.env.update(topic_env(lambda topic: f"{topic}-{tag}"))
        self.env.update({k: str(v) for k, v in extra_env.items()})
        self.settings = settings_from_env(self.env)
        self.log = tmp / f"worker-{tag}.log"
        # Faust keeps its data directory (``<app id>-data``) in the working directory: the test's own
        self.workdir = tmp / f"worker-{tag}"
        self.workdir.mkdir()
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerRun:
        """Create the run's topics first (all with the run's partition count): a test producing
        before the worker is up would otherwise auto-create an input topic with the broker's default
        partition count, and outputs could not keep their source partition."""
        from stream.stack.kafka import ensure_topics

        ensure_topics(self.settings)
        self.log_fh = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env=self.env,
            cwd=self.workdir,
            stdout=self.log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc:
            procs.stop_group(self.proc, signal.SIGTERM, timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def _produce(s: Settings, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(**s.kafka_client_options(), enable_idempotence=True, linger_ms=5)
    await p.start()
    try:
        for k, v in records:
            await p.send(topic, key=k, value=v)
        await p.flush()
    finally:
        await p.stop()


def produce(s: Settings, topic: str, records) -> None:
    asyncio.run(
        _produce(
            s,
            topic,
            [
                (k.encode() if isinstance(k, str) else k, v if isinstance(v, bytes) else orjson.dumps(v))
                for k, v in records
            ],
        )
    )


async def _consume(s: Settings, topics: list[str], until, timeout: float, committed: bool, positions: bool = False):
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        *topics,
        **s.kafka_client_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    await c.start()
    got: dict[str, list] = {t: [] for t in topics}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                got[tp.topic] += [
                    (m.key, orjson.loads(m.value), m.partition, m.offset)
                    if positions
                    else (m.key, orjson.loads(m.value))
                    for m in msgs
                ]
            if until(got):
                break
    finally:
        await c.stop()
    return got


def consume(
    s: Settings,
    topics: list[str],
    until=lambda got: False,
    timeout: float = 60.0,
    committed: bool = True,
    positions: bool = False,
):
    """Everything on ``topics`` from the beginning, read until ``until(got)`` or the timeout, as
    (key, value) pairs, or (key, value, partition, offset) with ``positions``."""
    return asyncio.run(_consume(s, topics, until, timeout, committed, positions))


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6), e.g.
    ``{"127.0.0.1"}``; an IPv4-mapped IPv6 address is reported as its IPv4 form."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, port_hex = local.partition(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(addr)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(raw)
            mapped = getattr(ip, "ipv4_mapped", None)
            found.add(str(mapped or ip))
    return found


def entity_state(client, prefix: str) -> dict:
    """A deployment's Redis state under ``prefix``, for comparing a crashed run with a clean one:
    string keys byte for byte; entity hashes as fence + state (which output snapshots remain depends on
    where batches and commits fell, not on the data)."""
    out = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        k = key.decode().removeprefix(prefix)
        if client.type(key) == b"string":
            out[k] = client.get(key)
        else:
            h = client.hgetall(key)
            out[k] = (h[b"fence"], orjson.loads(h[b"blob"])["s"])
    return out
