"""``finstream backtest``: would the live system have said the same thing?

A CSV (the formats ``finstream replay`` reads, same ``--map``/``--symbol``/``--ts-format``), or a
time range of the input topic itself, goes through exactly the live pipeline code in process:
the worker's own jobs (``build_jobs``), in micro-batches of ``FINSTREAM_BATCH_MAX``, on the
in-process state backend (``MemoryState``: same fencing and stored form as Redis), with the served
models of ``FINSTREAM_MODEL_DIR``. No server is needed. Every output goes to
``<out>/<topic>.jsonl``, one line per record:
``{"partition": p, "key": "<source-topic:partition:offset>", "value": <the record as published>}``.

A CSV row gets the source position it would have on a fresh input topic after ``finstream
replay``: partition by Kafka's default partitioner (murmur2 of the key, over ``--partitions``,
default ``FINSTREAM_TOPIC_PARTITIONS``), offsets from 0 in file order, so outputs carry the same
keys, ``source`` fields and event ids as the live ones. A row without a key (Kafka would pick a
random partition) goes to partition 0; the worker dead-letters such rows anyway. Records read
from the input topic keep their real positions.

``--compare TOPIC`` then diffs the outputs with what the live worker published on that topic
(``stream.tools.backtest_compare``). Derived records (linked card spend -> ``user-events``) are
written out but not fed back into the recommend job: that is a second pass with its own input.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import orjson

from stream.core.records import OutputRecord, SourceRecord
from stream.settings import Settings, topic_defaults
from stream.tools.backtest_compare import BacktestError, compare, from_inputs, read_range


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition Kafka's default partitioner (and aiokafka's) gives a keyed record."""
    from aiokafka.partitioner import murmur2

    return 0 if key is None else (murmur2(key) & 0x7FFFFFFF) % partitions


def source_records(topic: str, pairs, partitions: int, timestamp_ms: int | None = None) -> list[SourceRecord]:
    """(key, value) pairs in file order -> records at the positions a fresh topic would give them
    (Kafka's partitioner, offsets from 0 per partition), all with ``timestamp_ms``. The backtest and
    the bench's in-process scenarios (``stream.tools.bench_engine``) both feed jobs this way."""
    next_offset = [0] * partitions
    out = []
    for key, value in pairs:
        p = partition_for(key, partitions)
        out.append(SourceRecord(topic, p, next_offset[p], key, value, timestamp_ms))
        next_offset[p] += 1
    return out


async def run_job(job, records: list[SourceRecord], batch_max: int) -> list[OutputRecord]:
    out: list[OutputRecord] = []
    for start in range(0, len(records), batch_max):
        out += await job.process(records[start : start + batch_max])
    return out


def backtest(s: Settings, topic: str, records: list[SourceRecord], state=None) -> list[OutputRecord]:
    """The live job for ``topic`` over ``records``, on ``state`` (default: a fresh in-process one)."""
    from stream.state.memory import MemoryState
    from stream.worker import build_jobs

    if state is None:
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
                f.write(
                    b'{"partition":%d,"key":%s,"value":%s}\n'
                    % (o.partition or 0, orjson.dumps(o.key.decode()), o.value)
                )
    return {t: len(r) for t, r in by_topic.items()}


def resolve_topic(s: Settings, name: str) -> str:
    """An output topic by its configured name or by its default name (``forecasts`` means
    ``FINSTREAM_TOPIC_FORECASTS``, whatever it is set to)."""
    defaults = {default: getattr(s, attr) for attr, default in topic_defaults().items()}
    return defaults.get(name, name)


# --- command line ------------------------------------------------------------------------------


def read_inputs(
    s: Settings,
    kind: str,
    input: Path | None,
    mappings: list[str],
    symbol: str | None,
    partitions: int | None,
    limit: int,
    ts_format: str | None,
    start: str | None,
    until: str | None,
    timeout_s: float,
) -> list[SourceRecord]:
    """The CSV's rows at the positions a fresh topic would give them, or (no CSV) the input
    topic's committed records published in [start, until) with their real positions."""
    from stream.tools import replay
    from stream.tools.rebuild import RebuildError, parse_start

    mapping = replay.parse_mappings(mappings, kind)  # refuses an unknown kind too
    topic = replay.topic_for(s, kind)
    if input is not None:
        pairs = replay.rows_to_records(replay.read_csv(input), kind, mapping, symbol, ts_format)
        return source_records(topic, itertools.islice(pairs, limit or None), partitions or s.topic_partitions)
    try:
        start_ms, until_ms = (parse_start(t) if t else None for t in (start, until))
    except RebuildError as exc:
        raise BacktestError(str(exc).replace("--from", "--from/--until")) from None
    records = asyncio.run(read_range(s, topic, start_ms, until_ms, timeout_s))
    return records[:limit] if limit else records


def main(
    kind: str,
    input: Path | None,
    mappings: list[str],
    symbol: str | None,
    out: Path,
    compare_topic: str | None,
    partitions: int | None = None,
    limit: int = 0,
    ts_format: str | None = None,
    start: str | None = None,
    until: str | None = None,
    timeout_s: float = 60.0,
) -> None:
    import typer
    from rich.console import Console

    from stream.core.manifest import ManifestError
    from stream.settings import get_settings
    from stream.tools import replay

    console = Console(stderr=True)
    s = get_settings()

    def fail(exc: Exception):
        console.print(f"[red]error:[/red] {exc}")
        return typer.Exit(2)

    try:
        records = read_inputs(s, kind, input, mappings, symbol, partitions, limit, ts_format, start, until, timeout_s)
        outputs = backtest(s, replay.topic_for(s, kind), records)
    except (replay.ReplayError, BacktestError, ManifestError) as exc:
        raise fail(exc) from None
    counts = write_outputs(outputs, out)
    console.print(
        f"backtest: {len(records)} {kind} records from {input or replay.topic_for(s, kind)} -> "
        + (", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "no outputs")
        + f" in {out}/"
    )
    if not compare_topic:
        return
    target = resolve_topic(s, compare_topic)
    try:
        live = asyncio.run(read_range(s, target, timeout_s=timeout_s))
    except BacktestError as exc:
        raise fail(exc) from None
    c = compare(target, outputs, live, keep=from_inputs(records))
    (out / f"compare-{target}.json").write_bytes(orjson.dumps(c.to_dict(), option=orjson.OPT_INDENT_2))
    console.print(
        f"compare {target}: {c.compared} compared, backtest {c.backtest_records} / live {c.live_records} "
        f"records, {c.differing} differing"
    )
    if c.diverged:
        console.print(f"first divergence: {orjson.dumps(c.first).decode()}")
        raise typer.Exit(1)
    console.print("zero divergence")
