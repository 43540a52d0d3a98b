"""``finstream backtest``: would the live system have said the same thing?

A CSV (the formats ``finstream replay`` reads, same ``--map``/``--symbol``/``--ts-format``) goes
through exactly the live pipeline code in process: the worker's own jobs (``build_jobs``), in
micro-batches of ``FINSTREAM_BATCH_MAX``, on the in-process state backend (``MemoryState``, same
fencing and stored form as Redis), with the served models of ``FINSTREAM_MODEL_DIR``. No server is
needed. Every output goes to ``<out>/<topic>.jsonl``: one line per record,
``{"partition": p, "key": "<source-topic:partition:offset>", "value": <the record as published>}``.

Each row gets the source position it would have on a fresh input topic after ``finstream replay``:
partition by Kafka's default partitioner (murmur2 of the key, over ``--partitions``, default
``FINSTREAM_TOPIC_PARTITIONS``), offsets from 0 in file order. So outputs carry the same keys,
``source`` fields and event ids as the live ones. A row without a key (Kafka would pick a random
partition) goes to partition 0; the worker dead-letters such rows anyway.

``--compare TOPIC`` then reads that output topic (read_committed, from the start to its end) and
compares it record by record with the backtest's, per partition in order, byte for byte; it
reports the count of differing records and the first divergence (partition, index, key and the
first differing field) or zero. Derived records (linked card spend -> ``user-events``) are written
out but not fed back into the recommend job: that is a second pass with its own input.
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from stream.core.records import OutputRecord, SourceRecord
from stream.settings import TOPIC_FIELDS, Settings


class BacktestError(RuntimeError):
    pass


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition Kafka's default partitioner (and aiokafka's) gives a keyed record."""
    from aiokafka.partitioner import murmur2

    return 0 if key is None else (murmur2(key) & 0x7FFFFFFF) % partitions


def source_records(topic: str, pairs, partitions: int) -> list[SourceRecord]:
    """(key, value) pairs in file order -> records at the positions a fresh topic would give them."""
    next_offset = [0] * partitions
    out = []
    for key, value in pairs:
        p = partition_for(key, partitions)
        out.append(SourceRecord(topic, p, next_offset[p], key, value))
        next_offset[p] += 1
    return out


async def run_job(job, records: list[SourceRecord], batch_max: int) -> list[OutputRecord]:
    out: list[OutputRecord] = []
    for start in range(0, len(records), batch_max):
        out += await job.process(records[start:start + batch_max])
    return out


def backtest(s: Settings, topic: str, records: list[SourceRecord]) -> list[OutputRecord]:
    """The live job for ``topic`` over ``records``, on a fresh in-process state."""
    from stream.state.memory import MemoryState
    from stream.worker import build_jobs

    state = MemoryState(s.redis_key_prefix, s.key_secret, s.state_retention_ms())
    jobs = build_jobs(s, state=state)
    if topic not in jobs:
        raise BacktestError(f"no pipeline reads {topic!r} (inputs: {', '.join(jobs)})")
    return asyncio.run(run_job(jobs[topic], records, s.batch_max))


def write_outputs(outputs: list[OutputRecord], out_dir: Path) -> dict[str, int]:
    """``<out_dir>/<topic>.jsonl`` per output topic; returns the record count per topic."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by_topic: dict[str, list[OutputRecord]] = {}
    for o in outputs:
        by_topic.setdefault(o.topic, []).append(o)
    for topic, recs in by_topic.items():
        with open(out_dir / f"{topic}.jsonl", "wb") as f:
            for o in recs:
                f.write(b'{"partition":%d,"key":%s,"value":%s}\n' % (o.partition or 0, orjson.dumps(o.key.decode()), o.value))
    return {t: len(r) for t, r in by_topic.items()}


def resolve_topic(s: Settings, name: str) -> str:
    """An output topic by its configured name or by its default name (``forecasts`` means
    ``FINSTREAM_TOPIC_FORECASTS``, whatever it is set to)."""
    defaults = {Settings.model_fields[f].default: getattr(s, f) for f in TOPIC_FIELDS}
    return defaults.get(name, name)


# --- comparing with what the live worker published ------------------------------------------

@dataclass
class Comparison:
    topic: str
    compared: int = 0
    backtest_records: int = 0
    live_records: int = 0
    differing: int = 0
    first: dict | None = None        # the first divergence, or None
    per_partition: dict[int, int] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.first is not None

    def to_dict(self) -> dict:
        return {"topic": self.topic, "compared": self.compared, "backtest_records": self.backtest_records,
                "live_records": self.live_records, "differing": self.differing, "first_divergence": self.first}


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


def compare(topic: str, ours: list[OutputRecord], live: dict[int, list[tuple[bytes, bytes]]]) -> Comparison:
    """Record by record per partition, in order: key and value bytes must be equal."""
    mine: dict[int, list[tuple[bytes, bytes]]] = {}
    for o in ours:
        if o.topic == topic:
            mine.setdefault(o.partition or 0, []).append((o.key, o.value))
    c = Comparison(topic, backtest_records=sum(map(len, mine.values())), live_records=sum(map(len, live.values())))
    for p in sorted(set(mine) | set(live)):
        a, b = mine.get(p, []), live.get(p, [])
        bad = 0
        for i, (x, y) in enumerate(itertools.zip_longest(a, b)):
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
        d["reason"] = "live has a record the backtest did not produce" if ours is None else \
            "the backtest produced a record live did not publish"
        return d
    if ours[0] != theirs[0]:
        d.update(reason="different source position", backtest_key=ours[0].decode(), live_key=theirs[0].decode())
        return d
    found = first_difference(orjson.loads(ours[1]), orjson.loads(theirs[1]))
    path, a, b = found or ("value", "(same JSON, different bytes)", "")
    d.update(reason="different value", field=path, backtest=a, live=b)
    return d


async def read_topic(s: Settings, topic: str, timeout_s: float = 60.0) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every committed record of ``topic`` from its start to its current end, per partition."""
    import time

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
    tps = [TopicPartition(topic, p["partition"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])]
    consumer = AIOKafkaConsumer(**s.kafka_client_options(), enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)          # read_committed: the last stable offset
        got: dict[int, list[tuple[bytes, bytes]]] = {tp.partition: [] for tp in tps}
        todo = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise BacktestError(f"could not read {topic!r} to its end within {timeout_s:.0f} s")
            for tp, msgs in (await consumer.getmany(*todo, timeout_ms=500)).items():
                got[tp.partition] += [(m.key, m.value) for m in msgs if m.offset < ends[tp]]
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return got


# --- command line ------------------------------------------------------------------------------

def main(kind: str, input: Path, mappings: list[str], symbol: str | None, out: Path, compare_topic: str | None,
         partitions: int | None = None, limit: int = 0, ts_format: str | None = None, timeout_s: float = 60.0) -> None:
    import typer
    from rich.console import Console

    from stream import replay
    from stream.core.manifest import ManifestError
    from stream.settings import get_settings

    console = Console(stderr=True)
    s = get_settings()
    topic = replay.topic_for(s, kind) if kind in replay.KINDS else None
    try:
        mapping = replay.parse_mappings(mappings, kind)
        pairs = replay.rows_to_records(replay.read_csv(input), kind, mapping, symbol, ts_format)
        records = source_records(topic, itertools.islice(pairs, limit or None), partitions or s.topic_partitions)
        outputs = backtest(s, topic, records)
    except (replay.ReplayError, BacktestError, ManifestError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    counts = write_outputs(outputs, out)
    console.print(f"backtest: {len(records)} {kind} records from {input} -> "
                  + (", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "no outputs") + f" in {out}/")
    if not compare_topic:
        return
    target = resolve_topic(s, compare_topic)
    try:
        live = asyncio.run(read_topic(s, target, timeout_s))
    except BacktestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    c = compare(target, outputs, live)
    (out / f"compare-{target}.json").write_bytes(orjson.dumps(c.to_dict(), option=orjson.OPT_INDENT_2))
    console.print(f"compare {target}: {c.compared} compared, backtest {c.backtest_records} / live {c.live_records} "
                  f"records, {c.differing} differing")
    if c.diverged:
        console.print(f"first divergence: {orjson.dumps(c.first).decode()}")
        raise typer.Exit(1)
    console.print("zero divergence")
