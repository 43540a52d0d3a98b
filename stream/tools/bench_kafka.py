"""The Kafka scenarios of ``finstream bench``: ``worker-<job>`` (the real worker) and the
pass-through ceilings, each a subprocess fed through its own topics (``stream.tools.bench_e2e``).

This part knows what the inputs are (the pipeline's load, ``stream.tools.bench_load``), how many
outputs to wait for and how to account for every input in the report's ``counts``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from stream.settings import Settings
from stream.tools import bench_load
from stream.tools.bench_env import stack_pids
from stream.tools.synthetic.user_events import load_records as passthrough_load  # any small JSON: never read

_WARMED: dict[str, dict] = {}  # bootstrap -> what warmed its broker in this process


def warm_broker(s: Settings, log_dir: Path, external: bool) -> dict:
    """Run the transactional pass-through (``aiokafka-passthrough-eos``: produce, consumer group,
    transactions, read_committed reads) flat out for ``FINSTREAM_BENCH_BROKER_WARMUP_S`` seconds,
    once per broker and process, before the first Kafka scenario.

    Why: the bench usually starts a fresh broker, and a fresh broker JVM is slow until its hot paths
    are compiled: alternated runs at the same paced rate were ~2x slower (p50) on a fresh broker
    than on one that had run a few minutes (``docs/scaling.md``). Production brokers are warm, so
    the paced figures are measured after this; 0 measures the fresh broker, and the JSON of every
    Kafka scenario says which it was (``broker_warmup``)."""
    from stream.tools import bench_e2e as e2e
    from stream.tools import bench_specs

    done = _WARMED.get(s.kafka_bootstrap)
    if done is not None:
        return done
    seconds, events, runs, t0 = s.bench_broker_warmup_s, 0, 0, time.monotonic()
    while seconds > 0 and (runs == 0 or time.monotonic() - t0 < seconds):
        spec = dataclasses.replace(bench_specs.passthrough_spec(s, "aiokafka", exactly_once=True), name="broker-warmup")
        records = passthrough_load(20000, seed=runs)
        try:
            res = asyncio.run(e2e.run(spec, records, len(records), log_dir))
        finally:
            if external:
                asyncio.run(bench_specs.delete_topics(spec.settings, bench_specs.run_topics(spec)))
        events, runs = events + res["sources_matched"], runs + 1
    done = _WARMED[s.kafka_bootstrap] = {
        "requested_s": seconds,
        "seconds": round(time.monotonic() - t0, 1),
        "events": events,
        "basis": "aiokafka-passthrough-eos flat out through this broker before the first Kafka scenario "
        "(FINSTREAM_BENCH_BROKER_WARMUP_S; 0 = a fresh broker)",
    }
    return done


def bench_kafka(s: Settings, name: str, events: int, log_dir: Path, external: bool) -> dict:
    from stream.tools import bench_e2e as e2e
    from stream.tools import bench_specs

    warmup_info = warm_broker(s, log_dir, external)

    if name.startswith("worker-"):
        job = name.removeprefix("worker-")
        spec = bench_specs.worker_spec(s, job)
        kind = "worker"
        load = bench_load.load_module(job).load_records

        def silent(recs) -> int:
            return bench_load.silent(job, recs, s)

        warm, warm_expected = bench_load.warmup_events(job, s)
    else:
        mode, _, variant = name.partition("-passthrough")
        spec = bench_specs.passthrough_spec(s, mode, at_least_once=variant == "-alo", exactly_once=variant == "-eos")
        kind = "passthrough"
        load = passthrough_load

        def silent(recs) -> int:
            return 0

        warm = load(100, seed=99)
        warm_expected = len(warm)
    records, paced, warming, paced_expected = bench_load.flood_and_paced(load, silent, events)
    expected = events - warming
    try:
        res = asyncio.run(
            e2e.run(
                spec,
                records,
                expected,
                log_dir,
                warmup=warm,
                warmup_expected=warm_expected,
                paced=paced,
                paced_expected=paced_expected,
                other_pids=stack_pids(s),
            )
        )
    finally:
        if external:
            asyncio.run(bench_specs.delete_topics(spec.settings, bench_specs.run_topics(spec)))
        if kind == "worker":
            _drop_prefix_sync(s, spec.settings.redis_key_prefix)
    dead = res["timed_sources_by_topic"].get(spec.dead_topic, 0) if spec.dead_topic else 0
    outputs = res["sources_matched"] - dead
    res["counts"] = {
        "inputs": events,
        "outputs": outputs,
        "dead_letters": dead,
        "warming_up": warming,
        "duplicates": res.pop("duplicates"),
        "accounted": outputs + dead + warming == events,
    }
    if spec.extra_topics:
        res["counts"]["alerts_incl_warmup"] = sum(res["outputs_by_topic"].get(t, 0) for t in spec.extra_topics)
    res["throughput"] = res.pop("throughput_eps")
    res["processing_guarantee"] = (
        spec.settings.processing_guarantee
        if not name.startswith("aiokafka")
        else "exactly_once (stream.delivery lanes: the worker's transactions and commit policy)"
        if name.endswith("-eos")
        else "at_least_once (offsets committed after the batch's sends are acked)"
    )
    res["log"] = str(log_dir / f"{spec.name}.log")
    res["broker_warmup"] = warmup_info
    return {"name": name, "kind": kind, "status": "ok" if res["complete"] else "incomplete", **res}


def _drop_prefix_sync(s: Settings, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(s.redis_url.get_secret_value())
    try:
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i : i + 1000])
    finally:
        r.close()
