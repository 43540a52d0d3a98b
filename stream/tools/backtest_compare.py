"""Reading a topic range back from Kafka, and comparing a backtest's outputs with the live ones
(``finstream backtest --compare``; usage and limits in docs/state.md).

Live records are compared record by record per partition, in order, key and value byte for byte,
after keeping only those produced from the backtest's own input positions (their key is the
source position ``topic:partition:offset``): a live topic that also holds other inputs' outputs
still compares cleanly.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import orjson

from stream.core.records import OutputRecord, SourceRecord
from stream.settings import Settings


class BacktestError(RuntimeError):
    pass


async def read_range(
    s: Settings, topic: str, start_ms: int | None = None, end_ms: int | None = None, timeout_s: float = 60.0
) -> list[SourceRecord]:
    """Every committed record of ``topic`` whose Kafka timestamp is in [start_ms, end_ms) (None:
    from the start / to the current end), with its real position, partition by partition."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(**s.kafka_client_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise BacktestError(f"topic {topic!r} does not exist on {s.kafka_bootstrap}")
    tps = [TopicPartition(topic, p) for p in sorted(p["partition"] for p in described["partitions"])]
    consumer = AIOKafkaConsumer(
        **s.kafka_client_options(), enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        first = await consumer.beginning_offsets(tps)
        last = await consumer.end_offsets(tps)  # read_committed: the last stable offset

        async def at(ms: int | None, default: dict) -> dict:
            if ms is None:
                return default
            found = await consumer.offsets_for_times({tp: ms for tp in tps})
            return {tp: f.offset if f is not None else last[tp] for tp, f in found.items()}

        starts, ends = await at(start_ms, first), await at(end_ms, last)
        got: dict = {tp: [] for tp in tps}
        for tp in tps:
            consumer.seek(tp, starts[tp])
        todo = {tp for tp in tps if starts[tp] < ends[tp]}
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise BacktestError(f"could not read {topic!r} to its end within {timeout_s:.0f} s")
            for tp, msgs in (await consumer.getmany(*todo, timeout_ms=500)).items():
                got[tp] += [
                    SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                    for m in msgs
                    if m.offset < ends[tp]
                ]
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return [r for tp in tps for r in got[tp]]


@dataclass
class Comparison:
    topic: str
    compared: int = 0
    backtest_records: int = 0
    live_records: int = 0
    differing: int = 0
    first: dict | None = None  # the first divergence, or None
    per_partition: dict[int, int] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.first is not None

    def to_dict(self) -> dict:
        return {
            "topic": self.topic,
            "compared": self.compared,
            "backtest_records": self.backtest_records,
            "live_records": self.live_records,
            "differing": self.differing,
            "first_divergence": self.first,
        }


def first_difference(a, b, path: str = "") -> tuple[str, object, object] | None:
    """(path, ours, theirs) of the first field that differs between two decoded JSON values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b and type(a) is type(b) else (path or "value", a, b)


def from_inputs(inputs: list[SourceRecord]):
    """Predicate on an output key: was it produced from one of these input positions?"""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for r in inputs:
        lo, hi = spans.get((r.topic, r.partition), (r.offset, r.offset))
        spans[(r.topic, r.partition)] = (min(lo, r.offset), max(hi, r.offset))

    def produced_here(key: bytes | None) -> bool:
        topic, _, rest = (key or b"").decode(errors="replace").rpartition(":")
        topic, _, part = topic.rpartition(":")
        try:
            lo, hi = spans[(topic, int(part))]
            return lo <= int(rest) <= hi
        except (KeyError, ValueError):
            return False

    return produced_here


def compare(topic: str, ours: list[OutputRecord], live: list[SourceRecord], keep=lambda key: True) -> Comparison:
    """Record by record per partition, in order: key and value bytes must be equal. Live records
    for which ``keep(key)`` is false (another input's outputs) are left out."""
    mine: dict[int, list[tuple[bytes, bytes]]] = {}
    for o in ours:
        if o.topic == topic:
            mine.setdefault(o.partition or 0, []).append((o.key, o.value))
    theirs: dict[int, list[tuple[bytes, bytes]]] = {}
    for r in live:
        if keep(r.key):
            theirs.setdefault(r.partition, []).append((r.key or b"", r.value or b""))
    c = Comparison(topic, backtest_records=sum(map(len, mine.values())), live_records=sum(map(len, theirs.values())))
    for p in sorted(set(mine) | set(theirs)):
        bad = 0
        for i, (x, y) in enumerate(itertools.zip_longest(mine.get(p, []), theirs.get(p, []))):
            c.compared += x is not None and y is not None
            if x == y:
                continue
            bad += 1
            if c.first is None or (p, i) < (c.first["partition"], c.first["index"]):
                c.first = _divergence(p, i, x, y)
        c.per_partition[p] = bad
        c.differing += bad
    return c


def _divergence(p: int, i: int, ours, theirs) -> dict:
    d = {"partition": p, "index": i, "key": (ours or theirs)[0].decode(errors="replace")}
    if ours is None or theirs is None:
        d["reason"] = (
            "live has a record the backtest did not produce"
            if ours is None
            else "the backtest produced a record live did not publish"
        )
        return d
    if ours[0] != theirs[0]:
        d.update(reason="different source position", backtest_key=ours[0].decode(), live_key=theirs[0].decode())
        return d
    found = first_difference(orjson.loads(ours[1]), orjson.loads(theirs[1]))
    path, a, b = found or ("value", "(same JSON, different bytes)", "")
    d.update(reason="different value", field=path, backtest=a, live=b)
    return d
