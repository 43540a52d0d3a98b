"""What one Kafka run of ``finstream bench`` measures and how it reports it (``stream.tools.bench_e2e``
drives the run): latency percentiles of matched outputs, the flood phase's throughput, CPU and
memory, and the run's JSON. Apart from the driving so the report's keys and their meanings can be
read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

# an output matched to its input: (input Kafka ts, output Kafka ts, bench receive ms, output topic)
Matched = tuple[int, int, float, str]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024.0, 1)


def latency_stats(matched: list[Matched]) -> dict:
    kafka = [out_ts - ts for ts, out_ts, _, _ in matched]
    visible = [recv - ts for ts, _, recv, _ in matched]
    return {
        "latency_ms": {
            "p50": pct(kafka, 50),
            "p99": pct(kafka, 99),
            "min": min(kafka, default=None),
            "max": max(kafka, default=None),
        },
        "visible_latency_ms": {"p50": pct(visible, 50), "p99": pct(visible, 99)},
    }


def _flood_latency(matched: list[Matched]) -> dict:
    """The flood's latencies, each with what it measures (inputs are produced flat out)."""
    latency = latency_stats(matched)
    latency["latency_ms"]["basis"] = (
        "output Kafka timestamp - input Kafka timestamp (CreateTime), per source offset; "
        "inputs produced flat out, so this is mostly queueing behind the backlog"
    )
    latency["visible_latency_ms"]["basis"] = "bench receive time (read_committed consumer) - input Kafka timestamp"
    return latency


@dataclass
class Flood:
    """What the flood phase measured: the run's throughput, CPU and memory."""

    events: int
    matched: list[Matched]
    complete: bool
    elapsed: float  # first produce -> last needed output (s)
    throughput: float
    produce_eps: float
    cpu_s: dict[str, tuple[float | None, float | None]]  # "process" and the other pids: CPU s before, after
    bench_cpu_s: float
    rss_kb: dict[str, int | None]  # before_run, end, hwm

    @property
    def wall(self) -> float:
        return max(self.elapsed, 1e-9)


def report(
    flood: Flood,
    *,
    expected: int,
    paced: dict | None,
    startup_s: float,
    first_output_s: float | None,
    warmup_events: int,
    ready_marker: str,
    rss_ready_kb: int | None,
    peak_rss_kb: int,
    outputs_by_topic: dict[str, int],
    duplicates: int,
) -> dict:
    """The run's JSON (keys and meanings are what ``finstream bench`` reports and compares)."""
    wall, n = flood.wall, flood.events

    def cpu_pct(a, b):
        return None if a is None or b is None else round(100.0 * (b - a) / wall, 1)

    def cpu_us(a, b):
        return None if a is None or b is None else round(1e6 * (b - a) / max(n, 1), 1)

    others = {k: v for k, v in flood.cpu_s.items() if k != "process"}
    by_topic: dict[str, int] = {}
    for *_, topic in flood.matched:
        by_topic[topic] = by_topic.get(topic, 0) + 1
    return {
        "events": n,
        "expected_outputs": expected,
        "complete": flood.complete,
        "elapsed_s": round(flood.elapsed, 3),
        "throughput_eps": round(flood.throughput, 1),
        "produce_eps": round(flood.produce_eps, 1),
        **_flood_latency(flood.matched),
        "paced": paced,
        "startup_s": round(startup_s, 2),
        "first_output_s": None if first_output_s is None else round(first_output_s, 2),
        "startup_basis": f"spawn until the log line {ready_marker!r} (partitions assigned); "
        "first_output_s: spawn until the first warm-up output was read",
        "warmup_events": warmup_events,
        "rss_mb": {
            "ready": mb(rss_ready_kb),
            "before_run": mb(flood.rss_kb["before_run"]),
            "peak_sampled": mb(peak_rss_kb),
            "end": mb(flood.rss_kb["end"]),
            "hwm": mb(flood.rss_kb["hwm"]),
        },
        "cpu_pct": {
            "process": cpu_pct(*flood.cpu_s["process"]),
            "bench": round(100.0 * flood.bench_cpu_s / wall, 1),
            **{k: cpu_pct(*v) for k, v in others.items()},
        },
        "cpu_us_per_event": {
            "process": cpu_us(*flood.cpu_s["process"]),
            **{k: cpu_us(*v) for k, v in others.items()},
        },
        "outputs_by_topic": outputs_by_topic,
        "timed_sources_by_topic": by_topic,
        "sources_matched": len(flood.matched),
        "duplicates": duplicates,
    }
