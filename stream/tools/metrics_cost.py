"""``python -m stream.tools.metrics_cost``: what the worker's metrics cost, as a same-run A/B.

For each job every synthetic batch goes through ``job.process`` on the real Redis twice, back to
back in alternating order: once plain, once observed exactly as the worker observes it (stage
timers around state and models from ``stream.observe.instrument``, ``METRICS.batch_started`` /
``batch_done`` per batch), each arm on keys of its own. Pairing per batch puts both arms under
the same machine load; the summed times and the median paired ratio give the cost. A second figure isolates the per-batch
bookkeeping (``batch_done`` on a recorded batch, no Redis) in microseconds. Synthetic load: right
for speed, meaningless for model quality. Writes JSON next to the bench's results.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

from stream import pipelines
from stream.settings import Settings, get_settings
from stream.tools.backtest import source_records
from stream.tools.bench_engine import _drop_prefix
from stream.tools.bench_env import stack_for
from stream.tools.bench_load import make_events


async def _paired(s: Settings, job_name: str, batches: list, registry) -> tuple[list, list, list, list]:
    """Each batch through both arms back to back (order alternating), on keys of their own:
    paired timings see the same machine load, which on a shared machine moves by 2x per minute."""
    import redis.asyncio as aioredis

    from stream import observe
    from stream.metrics import METRICS
    from stream.state.redis_store import RedisState

    cls = pipelines.get(job_name).job
    client = aioredis.from_url(s.redis_url.get_secret_value(), max_connections=32)
    arms, prefixes = [], []
    for observed in (False, True):
        prefix = f"mcost-{job_name}-{uuid.uuid4().hex[:8]}"
        js = s.model_copy(update={"publish_risk_scores": True, "redis_key_prefix": prefix})
        job = cls(js, RedisState(client, prefix), registry)
        if observed:
            observe.instrument({"t": job})
        arms.append(job)
        prefixes.append(prefix)
    plain_s, observed_s, recorded = [], [], []
    cpu = [0.0, 0.0]  # this process's CPU seconds per arm: less swayed by other processes
    try:
        for i, batch in enumerate(batches):
            for arm in (0, 1) if i % 2 == 0 else (1, 0):
                job = arms[arm]
                t0, c0 = time.perf_counter(), time.process_time()
                if arm:
                    clock = METRICS.batch_started(job.slot)
                    outs = await job.process(batch)
                    clock.mark("processed")
                    clock.mark("delivered")
                    METRICS.batch_done(clock, batch, outs)
                else:
                    outs = await job.process(batch)
                (observed_s if arm else plain_s).append(time.perf_counter() - t0)
                cpu[arm] += time.process_time() - c0
                if arm and len(recorded) < 3:
                    recorded.append((batch, outs))
        for prefix in prefixes:
            await _drop_prefix(client, prefix)
    finally:
        await client.aclose()
    return plain_s, observed_s, recorded, cpu


def bookkeeping_us(job: str, recorded: list, repeats: int = 300) -> float:
    """Median microseconds of one batch_started + batch_done on a real batch and its outputs."""
    from stream.metrics import Metrics

    m = Metrics()
    times = []
    for _ in range(repeats):
        for batch, outs in recorded:
            t = time.perf_counter()
            clock = m.batch_started(job)
            clock.mark("processed")
            m.batch_done(clock, batch, outs)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


async def _job(s: Settings, job: str, events: int, rounds: int) -> dict:
    from stream.serving.models import ModelRegistry

    topic = pipelines.get(job).topic(s)
    recs = source_records(topic, make_events(job, events), s.topic_partitions)
    batches = [recs[i : i + s.batch_max] for i in range(0, len(recs), s.batch_max)]
    registry = ModelRegistry(s.model_dir, (job,))
    await _paired(s, job, batches[:2], registry)  # warm-up: scripts, sessions, imports
    plain, observed, recorded, cpu = [], [], [], [0.0, 0.0]
    for _ in range(rounds):
        p, o, rec, c = await _paired(s, job, batches, registry)
        plain += p
        observed += o
        recorded = recorded or rec
        cpu = [cpu[0] + c[0], cpu[1] + c[1]]
    n = sum(len(b) for b in batches) * rounds
    tp, to = sum(plain), sum(observed)
    ratios = sorted(o / p for p, o in zip(plain, observed))
    return {
        "job": job,
        "events": events,
        "rounds": rounds,
        "batch_max": s.batch_max,
        "batches": len(plain),
        "plain_events_per_s": round(n / tp, 1),
        "observed_events_per_s": round(n / to, 1),
        "cost_pct": round(100 * (to - tp) / tp, 2),
        "median_paired_cost_pct": round(100 * (statistics.median(ratios) - 1), 2),
        "cpu_cost_pct": round(100 * (cpu[1] - cpu[0]) / cpu[0], 2),
        "bookkeeping_us_per_batch": round(bookkeeping_us(job, recorded), 1),
        "mean_batch_ms": round(1000 * tp / len(plain), 2),
    }


def main(events: int = 5000, rounds: int = 5, out: Path = Path("bench_results")) -> list[dict]:
    with stack_for(get_settings()) as (s, _):
        results = [asyncio.run(_job(s, job, events, rounds)) for job in pipelines.names()]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"metrics-cost-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(
        json.dumps({"scenario": "metrics A/B on job.process with real Redis", "results": results}, indent=1)
    )
    print(
        f"{'job':10} {'plain ev/s':>11} {'observed ev/s':>14} {'cost %':>7} {'paired median %':>16} {'CPU %':>6} "
        f"{'bookkeeping µs/batch':>21} {'batch ms':>9}"
    )
    for r in results:
        print(
            f"{r['job']:10} {r['plain_events_per_s']:>11,.0f} {r['observed_events_per_s']:>14,.0f} {r['cost_pct']:>7.2f} "
            f"{r['median_paired_cost_pct']:>16.2f} {r['cpu_cost_pct']:>6.2f} {r['bookkeeping_us_per_batch']:>21.1f} {r['mean_batch_ms']:>9.2f}"
        )
    print(f"({rounds} rounds x {events} events per job, every batch through both arms back to back; JSON: {path})")
    return results


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
