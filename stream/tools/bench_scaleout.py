"""Scale-out, measured (issue 14): one worker vs two workers on 8 partitions, one Redis vs a
three-node Redis Cluster, in one run on one machine.

``python -m stream.tools.bench_scaleout [--events N] [--jobs risk,forecast] [--out DIR]``
(``make bench-scaleout``). Each case is ``finstream bench``'s own end-to-end run
(``stream.tools.bench_e2e.run``: warm-up, flood, paced phase, every input accounted for) of the real
worker on input topics of 8 partitions; for two workers a second ``stream.cli worker`` with the same
app id is started first and the run's worker joins its group, so the flood is split between them by
Kafka. The Redis Cluster is a private one (``stream.stack.redis_cluster``) with
``FINSTREAM_REDIS_CLUSTER=true``. Why a script of its own: on the 2-core development machine these
runs say how the worker shares cores with a second worker, the broker and Redis, which the
per-scenario bench cannot; the figures and what they mean are in ``docs/scaling.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PARTITIONS = 8


def _case(s, job: str, workers: int, cluster, events: int, log_dir: Path) -> dict:
    from stream.settings import settings_from_env
    from stream.tools import bench_e2e as e2e
    from stream.tools import bench_load, bench_specs
    from stream.tools.bench_env import stack_pids
    from stream.tools.bench_kafka import _drop_prefix_sync

    spec = bench_specs.worker_spec(s, job)
    spec.env["FINSTREAM_TOPIC_PARTITIONS"] = str(PARTITIONS)
    if cluster is not None:
        spec.env.update({"FINSTREAM_REDIS_URL": cluster.url, "FINSTREAM_REDIS_CLUSTER": "true"})
    spec.settings = settings_from_env(spec.env)
    spec.name = f"scaleout-{job}-{workers}w-{'cluster' if cluster is not None else 'redis'}"
    records, paced, warming, paced_expected = bench_load.flood_and_paced(
        bench_load.load_module(job).load_records, lambda recs: bench_load.silent(job, recs, s), events
    )
    warm, warm_expected = bench_load.warmup_events(job, s)
    others: list[bench_specs.Proc] = []
    try:
        asyncio.run(bench_specs.create_topics(spec.settings, bench_specs.run_topics(spec)))
        for i in range(workers - 1):  # the others start first; the measured one joins their group
            other = bench_specs.Proc(spec, log_dir / f"{spec.name}-other{i}.log")
            others.append(other)
            started = time.monotonic()
            while not other.ready(started, 120):
                time.sleep(0.1)
        pids = {**stack_pids(s), **{f"worker_{i + 2}": p.pid for i, p in enumerate(others)}}
        if cluster is not None:
            pids.update({f"redis_node_{i}": p.pid for i, p in enumerate(cluster.procs)})
        res = asyncio.run(
            e2e.run(
                spec,
                records,
                events - warming,
                log_dir,
                warmup=warm,
                warmup_expected=warm_expected,
                paced=paced,
                paced_expected=paced_expected,
                other_pids=pids,
            )
        )
    finally:
        for p in others:
            p.stop()
        asyncio.run(bench_specs.delete_topics(spec.settings, bench_specs.run_topics(spec)))
        if cluster is None:
            _drop_prefix_sync(s, spec.settings.redis_key_prefix)
    return {
        "name": spec.name,
        "job": job,
        "workers": workers,
        "redis": "cluster-3" if cluster is not None else "single",
        "partitions": PARTITIONS,
        "status": "ok" if res["complete"] and res["duplicates"] == 0 else "incomplete",
        "throughput": res.pop("throughput_eps"),
        **res,
    }


def main(out: Path, events: int, jobs: list[str]) -> Path:
    from stream.settings import get_settings
    from stream.stack import redis_cluster
    from stream.tools.bench_env import machine_info, stack_for

    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = out / f"scaleout-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "tool": "bench_scaleout",
        "started_at": stamp,
        "events": events,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "cases": [],
    }
    with stack_for(get_settings()) as (s, _kind):
        report["machine"] = machine_info(s)
        tmp = Path(tempfile.mkdtemp(prefix="finstream-scaleout-cluster-"))
        cluster = redis_cluster.start(tmp)
        try:
            for job in jobs:
                for redis_target in (None, cluster):
                    for workers in (1, 2):
                        t = time.monotonic()
                        try:
                            case = _case(s, job, workers, redis_target, events, log_dir)
                        except Exception as exc:  # one broken case must not lose the others
                            case = {"name": f"{job}-{workers}w", "status": "failed", "reason": repr(exc)}
                        case["wall_s"] = round(time.monotonic() - t, 1)
                        report["cases"].append(case)
                        print(_line(case), flush=True)
        finally:
            redis_cluster.stop(cluster)
            shutil.rmtree(tmp, ignore_errors=True)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    path = out / f"scaleout-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"results: {path}")
    return path


def _line(c: dict) -> str:
    if c.get("status") != "ok" or not c.get("paced"):
        return f"{c['name']:<34} {c.get('status')}: {c.get('reason', '')}"
    cpu = c["cpu_pct"]
    workers_cpu = (cpu.get("process") or 0) + sum(v or 0 for k, v in cpu.items() if k.startswith("worker_"))
    redis_cpu = sum(v or 0 for k, v in cpu.items() if k.startswith("redis_"))
    return (
        f"{c['name']:<34} {c['throughput']:>9,.0f} ev/s  paced p50/p99 "
        f"{c['paced']['latency_ms']['p50']:.0f}/{c['paced']['latency_ms']['p99']:.0f} ms  "
        f"CPU workers {workers_cpu:.0f}% kafka {cpu.get('kafka_broker') or 0:.0f}% redis {redis_cpu:.0f}%"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--jobs", default="risk")
    ap.add_argument("--out", type=Path, default=Path("bench_results"))
    a = ap.parse_args()
    main(a.out, a.events, [j.strip() for j in a.jobs.split(",") if j.strip()])
