"""The worker's /metrics, read back into the handful of figures the page shows.

Rates and latency percentiles come from the difference between two scrapes, so they describe
the last few seconds rather than the whole run; percentiles are read off the histogram buckets
(upper bound of the bucket holding the quantile, as Prometheus' ``histogram_quantile`` would
interpolate, linearly inside the bucket).
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> dict:
    """{sample name: [(labels, value)]}."""
    out = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((dict(s.labels), s.value))
    return out


def _by(samples, label: str) -> dict:
    acc = defaultdict(float)
    for labels, v in samples:
        acc[labels.get(label, "")] += v
    return dict(acc)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus-style quantile from cumulative (upper bound, count) pairs, sorted by bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 0.0)
        prev_le, prev_c = le, c
    return prev_le


def _latency_buckets(m: dict) -> dict[str, dict[float, float]]:
    per_job: dict[str, dict[float, float]] = defaultdict(dict)
    for labels, v in m.get("finstream_end_to_end_latency_seconds_bucket", []):
        per_job[labels["slot"]][float(labels["le"])] = v
    return per_job


def summarise(prev: dict | None, cur: dict, dt: float) -> dict:
    """Figures for the page from two parsed scrapes ``dt`` seconds apart (``prev`` may be None)."""
    events = _by(cur.get("finstream_events_total", []), "slot")
    outputs = _by(cur.get("finstream_outputs_total", []), "slot")
    p_events = _by(prev.get("finstream_events_total", []), "slot") if prev else {}
    p_outputs = _by(prev.get("finstream_outputs_total", []), "slot") if prev else {}
    lat_now, lat_prev = _latency_buckets(cur), _latency_buckets(prev) if prev else {}
    jobs = {}
    for job in sorted(set(events) | set(_latency_buckets(cur))):
        now, before = lat_now.get(job, {}), lat_prev.get(job, {})
        window = [(le, c - before.get(le, 0.0)) for le, c in sorted(now.items())]
        if not window or window[-1][1] <= 0:  # nothing new: fall back to the whole run
            window = sorted(now.items())
        jobs[job] = {
            "events_total": events.get(job, 0.0),
            "outputs_total": outputs.get(job, 0.0),
            "events_per_s": (events.get(job, 0.0) - p_events.get(job, 0.0)) / dt if prev and dt > 0 else None,
            "outputs_per_s": (outputs.get(job, 0.0) - p_outputs.get(job, 0.0)) / dt if prev and dt > 0 else None,
            "latency_s": {f"p{int(q * 100)}": quantile(q, window) for q in (0.5, 0.95, 0.99)},
        }
    lag = defaultdict(float)
    for labels, v in cur.get("finstream_consumer_lag_messages", []):
        lag[labels["topic"]] += v
    return {
        "jobs": jobs,
        "lag": dict(lag),
        "dead_letters": _by(cur.get("finstream_dead_letters_total", []), "reason"),
        "models": [
            {
                "slot": lb.get("slot"),
                "model": lb.get("model"),
                "version": lb.get("version"),
                "sha256": (lb.get("sha256") or "")[:12],
            }
            for lb, _ in cur.get("finstream_model_info", [])
        ],
        "ready": bool(cur.get("finstream_ready", [({}, 0.0)])[0][1]),
        "components": {lb["component"]: bool(v) for lb, v in cur.get("finstream_component_up", [])},
        "inflight": sum(v for _, v in cur.get("finstream_inflight_batches", [])),
    }
