"""``finstream rebuild``: rebuild the worker's Redis state from Kafka into a fresh key namespace.

Why: Redis is the only copy of per-entity state (windows, velocity, profiles). If its data is lost
(no persistence, a lost volume, a bad restore), the input topics still hold the events. Rebuilding
runs the very same jobs (``stream.serving``) over them, from a chosen start, into a new
FINSTREAM_REDIS_KEY_PREFIX, and stops where the worker's consumer group has committed: the worker,
restarted on the new prefix, continues from exactly there, with state and fences as if it had never
lost anything (from ``--from earliest``; a later start gives windows that warm up from that point).
Outputs are not published again: they already were. See docs/security.md ("Rebuilding state").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stream.settings import Settings


class RebuildError(RuntimeError):
    pass


@dataclass
class RebuildReport:
    prefix: str
    records: dict[str, int] = field(default_factory=dict)  # input topic -> records replayed
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # "topic:partition" -> [start, end)
    seconds: float = 0.0


def parse_start(text: str) -> int | None:
    """``earliest`` -> None; epoch milliseconds or an ISO-8601 time (UTC unless it says) -> ms."""
    if text == "earliest":
        return None
    if text.isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise RebuildError(f"--from {text!r}: expected 'earliest', epoch milliseconds or an ISO time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


async def _no_live_workers(s: Settings, admin, wait_s: float) -> None:
    """The group must be empty, or the rebuild would stop short of what the workers go on to commit.
    A worker killed without leaving stays a member until its session times out: wait that long."""
    deadline = time.monotonic() + wait_s
    while True:
        groups = await admin.describe_consumer_groups([s.app_id])
        # DescribeGroups rows: (error, group id, state, protocol type, protocol, members, ...)
        active = sum(len(g[5]) for resp in groups for g in resp.groups if g[1] == s.app_id)
        if not active:
            return
        if time.monotonic() >= deadline:
            raise RebuildError(
                f"{active} consumer(s) still run in group {s.app_id!r}: stop the workers first, so "
                "that the rebuild ends where they stopped"
            )
        await asyncio.sleep(0.5)


async def _ranges(s: Settings, consumer, start_ms: int | None, wait_s: float) -> dict:
    """[start, end) per input partition: start from --from, end at the group's committed offset
    (or the log end where the group never committed)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(**s.kafka_client_options())
    await admin.start()
    try:
        await _no_live_workers(s, admin, wait_s)
        described = await admin.describe_topics(list(s.input_topics))
        committed = await admin.list_consumer_group_offsets(s.app_id)
    finally:
        await admin.close()
    tps = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in sorted(t["partitions"], key=lambda p: p["partition"])
    ]
    if not tps:
        raise RebuildError(f"none of the input topics {s.input_topics} exists on {s.kafka_bootstrap}")
    first = await consumer.beginning_offsets(tps)
    last = await consumer.end_offsets(tps)
    starts = dict(first)
    if start_ms is not None:
        for tp, found in (await consumer.offsets_for_times({tp: start_ms for tp in tps})).items():
            starts[tp] = found.offset if found is not None else last[tp]
    out = {}
    for tp in tps:
        meta = committed.get(tp)
        end = meta.offset if meta is not None and meta.offset >= 0 else last[tp]
        out[tp] = (starts[tp], max(starts[tp], end))
    return out


async def rebuild(
    s: Settings, prefix: str, start_ms: int | None, redis_client=None, wait_s: float | None = None
) -> RebuildReport:
    from aiokafka import AIOKafkaConsumer

    from stream.core.records import SourceRecord
    from stream.state.redis_store import connect
    from stream.worker import build_jobs

    if prefix == s.redis_key_prefix:
        raise RebuildError("--prefix must name a fresh namespace, not the current FINSTREAM_REDIS_KEY_PREFIX")
    target = s.model_copy(update={"redis_key_prefix": prefix})
    r = redis_client or connect(target)
    if await r.scan(0, match=f"{prefix}:*", count=1000) != (0, []):
        raise RebuildError(f"Redis already holds keys under {prefix!r}: pick a fresh prefix")
    jobs = build_jobs(target, r)
    report = RebuildReport(prefix)
    t0 = time.monotonic()
    consumer = AIOKafkaConsumer(
        **s.kafka_client_options(), enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        wait = s.kafka_session_timeout_s + 5 if wait_s is None else wait_s
        ranges = await _ranges(s, consumer, start_ms, wait)
        todo = {tp: rng for tp, rng in ranges.items() if rng[0] < rng[1]}
        report.ranges = {f"{tp.topic}:{tp.partition}": rng for tp, rng in ranges.items()}
        consumer.assign(list(todo))
        for tp, (start, _) in todo.items():
            consumer.seek(tp, start)
        while todo:
            got = await consumer.getmany(*todo, timeout_ms=1000, max_records=s.batch_max)
            for tp, msgs in got.items():
                end = todo[tp][1] if tp in todo else -1
                batch = [
                    SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                    for m in msgs
                    if m.offset < end
                ]
                if batch:
                    await jobs[tp.topic].process(batch)  # outputs dropped: they were published the first time
                    report.records[tp.topic] = report.records.get(tp.topic, 0) + len(batch)
                if tp in todo and (not msgs or msgs[-1].offset + 1 >= end or await consumer.position(tp) >= end):
                    consumer.pause(tp)
                    del todo[tp]
    finally:
        await consumer.stop()
        if redis_client is None:
            await r.aclose()
    report.seconds = time.monotonic() - t0
    return report


def main(prefix: str, start: str) -> None:
    from rich.console import Console

    from stream.settings import get_settings

    out, err = Console(), Console(stderr=True)
    s = get_settings()
    try:
        report = asyncio.run(rebuild(s, prefix, parse_start(start)))
    except RebuildError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(1) from None
    total = sum(report.records.values())
    out.print(f"rebuilt {total} records into prefix {prefix!r} in {report.seconds:.1f}s: {report.records}")
    out.print(f"now start the worker with FINSTREAM_REDIS_KEY_PREFIX={prefix} (it resumes at the group's offsets)")
