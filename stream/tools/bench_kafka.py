"""The Kafka scenarios of ``finstream bench``: ``worker-<job>`` (the real worker) and the
pass-through ceilings, each a subprocess fed through its own topics (``stream.tools.bench_e2e``).

This part knows what the inputs are (the pipeline's load, ``stream.tools.bench_load``), how many
outputs to wait for and how to account for every input in the report's ``counts``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from stream.settings import Settings
from stream.tools import bench_load
from stream.tools.bench_env import stack_pids
from stream.tools.synthetic.user_events import load_records as passthrough_load  # any small JSON: never read


def bench_kafka(s: Settings, name: str, events: int, log_dir: Path, external: bool) -> dict:
    from stream.tools import bench_e2e as e2e
    from stream.tools import bench_specs

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
    both = load(2 * events, spread=events)  # flood, then a prefix of the rest paced
    records, paced = both[:events], both[events:]
    warming = silent(records)

    def paced_expected(m: int) -> int:
        return m - (silent(records + paced[:m]) - warming)

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
