"""The in-process scenarios of ``finstream bench``: ``engine-<job>`` and ``naive-<job>``.

A job's ``process()`` on real Redis with no Kafka: on batches of ``batch_max`` (the engine's own
cost), or one event at a time on a sample (the naive baseline the batching is measured against).
Split from ``stream.tools.bench`` (which runs the scenarios and renders the report) because this is
the part that wraps Redis and the models to count round trips, commands and model calls.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections import Counter

import numpy as np

from stream.settings import Settings
from stream.tools.backtest import source_records
from stream.tools.bench_load import make_events
from stream.tools.bench_report import rnd as _r

NAIVE_SAMPLE = 2000  # events a naive-<job> scenario runs (one at a time: slow by design)
# The engine again at the batch size the paced load gives the worker (the stage trace of the paced
# phase: median 34-53 records per batch, docs/scaling.md), on the first SMALL_SAMPLE events: there
# the per-batch costs (Redis round trips, the onnxruntime call, set-up) are spread over few events.
SMALL_BATCH = 40
SMALL_SAMPLE = 5000


class CountingRedis:
    """Wraps an asyncio Redis client: counts round trips (pipelines, script calls outside one:
    ``RedisState`` loads a batch with one, and connections taken from the pool: it saves on one)
    and the time spent in them."""

    def __init__(self, client):
        self._r = client
        self.round_trips = 0
        self.seconds = 0.0

    def register_script(self, script):
        from redis.commands.core import AsyncScript

        return AsyncScript(self, script)  # its calls come back through evalsha below

    async def evalsha(self, *a, **kw):
        t = time.perf_counter()
        try:
            return await self._r.evalsha(*a, **kw)
        finally:
            self.seconds += time.perf_counter() - t
            self.round_trips += 1

    def pipeline(self, *a, **kw):
        pipe = self._r.pipeline(*a, **kw)
        original = pipe.execute

        async def execute(*aa, **kk):
            t = time.perf_counter()
            try:
                return await original(*aa, **kk)
            finally:
                self.seconds += time.perf_counter() - t
                self.round_trips += 1

        pipe.execute = execute
        return pipe

    @property
    def connection_pool(self):  # RedisState._round_trip sends its saves on a pooled connection
        return _CountingPool(self, self._r.connection_pool)

    def __getattr__(self, name):
        return getattr(self._r, name)


class _CountingPool:  # the pool of a CountingRedis: a connection taken and released is a round trip
    def __init__(self, counting: CountingRedis, pool):
        self._counting, self._pool, self._t = counting, pool, 0.0

    async def get_connection(self, *a, **kw):
        self._t = time.perf_counter()
        return await self._pool.get_connection(*a, **kw)

    async def release(self, conn):
        await self._pool.release(conn)
        self._counting.seconds += time.perf_counter() - self._t
        self._counting.round_trips += 1

    def __getattr__(self, name):
        return getattr(self._pool, name)


class TimedModel:
    """Wraps the registry's served model's ``run``: time and rows per call."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self.rows = 0

    def wrap(self, served) -> None:
        original = served.run

        def run(feeds):
            t = time.perf_counter()
            try:
                return original(feeds)
            finally:
                self.seconds += time.perf_counter() - t
                self.calls += 1
                self.rows += len(next(iter(feeds.values())))

        served.run = run


class CommitWatermark:
    """What the worker's delivery layer would have committed, as ``Job.committed`` reads it.

    The worker commits each partition's open transaction every ``FINSTREAM_COMMIT_INTERVAL_MS``
    and tells the jobs (``Delivery.committed``), which drop output snapshots below it
    (``stream.core.fencing``). Without it the engine would keep 64 snapshots per entity, a cost
    the worker never pays. Modelled conservatively: a partition's first offset counts as committed
    (as ``Publisher.committed`` says after start), and each time the interval has passed (engine
    time, checked between batches) everything up to the batch *before* the last one processed is
    committed: the watermark lags by one batch more than the worker's would."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.commits = 0
        self._committed: dict[tuple[str, int], int] = {}
        self._done: dict[tuple[str, int], int] = {}  # next offset after the batches processed so far
        self._last = time.perf_counter()

    def __call__(self, topic: str, partition: int) -> int | None:
        return self._committed.get((topic, partition))

    def seen(self, batch) -> None:
        """Before a batch is processed: a partition's first offset is committed."""
        for r in batch:
            self._committed.setdefault((r.topic, r.partition), r.offset)

    def processed(self, batch) -> None:
        """After a batch: commit (one batch behind) once the interval has passed."""
        now = time.perf_counter()
        if now - self._last >= self.interval_s:  # _done does not include this batch yet: one batch behind
            for tp, nxt in self._done.items():
                self._committed[tp] = max(self._committed.get(tp, nxt), nxt)
            self.commits += 1
            self._last = now
        for r in batch:
            self._done[(r.topic, r.partition)] = r.offset + 1

    def describe(self) -> dict:
        return {
            "interval_ms": round(self.interval_s * 1000),
            "commits": self.commits,
            "basis": "snapshots trimmed at a modelled commit watermark: every commit interval (engine time), "
            "offsets up to the batch before the last one processed count as committed (one batch more "
            "lag than the worker's delivery layer); a partition's first offset counts as committed",
        }


async def _engine(
    s: Settings, job_name: str, records, warm, batch_size: int | None = None, name: str | None = None
) -> dict:
    """The job itself on real Redis, no Kafka: batches of ``batch_size`` (default ``batch_max``).
    ``batch_size=1`` is the naive baseline: per event one model call and its own Redis round trips."""
    from stream import pipelines
    from stream.serving.models import ModelRegistry
    from stream.state.redis_store import RedisState, connect_state

    p = pipelines.get(job_name)
    topic = p.topic(s)
    prefix = f"bench-eng-{job_name}-{uuid.uuid4().hex[:8]}"
    js = s.model_copy(update={"publish_risk_scores": True, "redis_key_prefix": prefix})
    client = connect_state(s)  # the worker's state client (stream.worker.build_jobs)
    counting = CountingRedis(client)
    registry = ModelRegistry(s.model_dir, (p.slot,))
    timer = TimedModel()
    try:
        # warm-up (separate keys): loads the Lua scripts, first onnxruntime run, imports
        warm_job = p.build(js, RedisState(client, prefix + "-warm"), registry)
        # every slot the job serves (the forecast job adds one per bar interval when it is built)
        for served in {id(registry[slot]): registry[slot] for slot in registry.slots}.values():
            timer.wrap(served)
        await warm_job.process(source_records(topic, warm, s.topic_partitions, int(time.time() * 1000)))
        gc.freeze()  # as the worker does after start-up (stream.worker)
        info0 = await client.info("commandstats")
        timer.__init__()
        job = p.build(js, RedisState(counting, prefix), registry)
        watermark = CommitWatermark(s.commit_interval_s)
        job.committed = watermark
        batches = source_records(topic, records, s.topic_partitions, int(time.time() * 1000))
        lat, rt, red_s, onnx_s = [], [], [], []
        out_topics: Counter = Counter()
        t_all, cpu0 = time.perf_counter(), time.process_time()
        step = batch_size or s.batch_max
        for i in range(0, len(batches), step):
            batch = batches[i : i + step]
            rt0, r0, o0 = counting.round_trips, counting.seconds, timer.seconds
            watermark.seen(batch)
            t = time.perf_counter()
            outs = await job.process(batch)
            lat.append(time.perf_counter() - t)
            watermark.processed(batch)
            rt.append(counting.round_trips - rt0)
            red_s.append(counting.seconds - r0)
            onnx_s.append(timer.seconds - o0)
            out_topics.update(o.topic for o in outs)
        total, cpu_s = time.perf_counter() - t_all, time.process_time() - cpu0
        info1 = await client.info("commandstats")
        await _drop_prefix(client, prefix)
    finally:
        await client.aclose()

    n = len(records)
    primary, *others = p.output_topics(js)
    outputs = out_topics.get(primary, 0)
    dead = out_topics.get(js.topic_dead_letters, 0)
    warming = job.counts.get("warming_up", 0) + job.counts.get("in_open_bar", 0)  # no output yet, by design
    cmds = {
        k.removeprefix("cmdstat_"): v["calls"] - info0.get(k, {}).get("calls", 0)
        for k, v in info1.items()
        if v["calls"] - info0.get(k, {}).get("calls", 0) > 0
    }
    cmds.pop("info", None)
    ms = np.asarray(lat) * 1000
    batch_time = float(np.sum(lat))
    return {
        "name": name or f"engine-{job_name}",
        "kind": "naive" if batch_size == 1 else "engine",
        "status": "ok",
        "events": n,
        "batches": len(lat),
        "batch_max": batch_size or s.batch_max,
        "throughput": round(n / total, 1),
        # this process's CPU (the job, the Redis client, onnxruntime's threads): less moved by
        # other load on a shared machine than the wall-clock throughput
        "cpu_us_per_event": {"process": _r(1e6 * cpu_s / max(n, 1), 1)},
        "latency_ms": {
            "p50": _r(np.percentile(ms, 50), 3),
            "p99": _r(np.percentile(ms, 99), 3),
            "max": _r(ms.max(), 3),
            "basis": f"one job.process() call on a batch of {step} event(s)",
        },
        "redis": {
            "round_trips_per_batch": _r(np.mean(rt), 2),
            "round_trips_total": int(sum(rt)),
            "commands": cmds,
            "commands_per_event": _r(sum(cmds.values()) / max(n, 1), 3),
            "note": "round trips = pipelines executed and script calls outside one; commands incl. those run inside the Lua scripts",
        },
        "time_split_pct": {
            "redis": _r(100 * sum(red_s) / batch_time, 1),
            "onnxruntime": _r(100 * sum(onnx_s) / batch_time, 1),
            "python": _r(100 * (batch_time - sum(red_s) - sum(onnx_s)) / batch_time, 1),
            "basis": "redis = pipeline execute (client encode + server + reply parse); "
            "python = parsing, features, fencing, reasons, output JSON",
        },
        "onnx": {"calls": timer.calls, "rows": timer.rows, "rows_per_call": _r(timer.rows / max(timer.calls, 1), 1)},
        "counts": {
            "inputs": n,
            "outputs": outputs,
            "dead_letters": dead,
            "warming_up": warming,
            "accounted": outputs + dead + warming == n,
            # outputs beside the main one (risk alerts), under the report's name for them
            **({"alerts": sum(out_topics.get(t, 0) for t in others)} if others else {}),
        },
        "job_counts": dict(job.counts),
        "committed_watermark": watermark.describe(),
    }


async def _drop_prefix(client, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await client.delete(*keys[i : i + 1000])


def bench_engine(s: Settings, job: str, events: int, naive: bool = False) -> dict:
    """engine-<job>: the job on batches of batch_max; naive-<job>: the same code one event at a
    time on the first ``NAIVE_SAMPLE`` events (what a per-event consumer loop would do)."""
    records = make_events(job, events)
    warm = make_events(job, min(s.batch_max, events), seed=99)
    if naive:
        return asyncio.run(_engine(s, job, records[:NAIVE_SAMPLE], warm, batch_size=1, name=f"naive-{job}"))
    result = asyncio.run(_engine(s, job, records, warm))
    small = asyncio.run(_engine(s, job, records[:SMALL_SAMPLE], warm, batch_size=SMALL_BATCH))
    keep = ("batch_max", "events", "throughput", "cpu_us_per_event", "latency_ms", "time_split_pct")
    result["small_batch"] = {
        **{k: small[k] for k in keep},
        "redis_round_trips_per_batch": small["redis"]["round_trips_per_batch"],
    }
    return result
