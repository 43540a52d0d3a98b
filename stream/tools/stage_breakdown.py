"""Where a paced record's visible latency goes: ``python -m stream.tools.stage_breakdown BENCH_JSON TRACE_DIR``.

Joins the stage timestamps the workers wrote (``FINSTREAM_STAGE_TRACE_DIR``, ``stream.stagetrace``)
with the bench's paced phase of each scenario (its ``paced.window_ms``; scenarios run one after
the other, so the window picks the scenario's units) and prints, per stage, p50/p99 of
(stage time - input Kafka timestamp) over the paced records, and of the step from the stage before.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

STAGES = ["fetched", "taken", "processed", "dequeued", "sent", "commit_start", "acked", "offsets", "committed"]


def _units(trace_dir: Path) -> list[dict]:
    out = []
    for f in sorted(trace_dir.glob("*.jsonl")):
        out.extend(json.loads(line) for line in f.read_text().splitlines() if line.strip())
    return out


def breakdown(units: list[dict], window: tuple[float, float]) -> dict[str, dict]:
    """Per stage: cumulative and step p50/p99 (ms) over the records whose input ts is in ``window``."""
    lo, hi = window
    cum: dict[str, list[float]] = {s: [] for s in STAGES}
    step: dict[str, list[float]] = {s: [] for s in STAGES}
    for u in units:
        for i, ts in enumerate(u["ts"]):
            if not lo <= ts <= hi:
                continue
            times = dict(u["marks"])
            if u["fetched"]:
                times["fetched"] = u["fetched"][i]
            prev = ts
            for s in STAGES:
                if s in times:
                    cum[s].append(times[s] - ts)
                    step[s].append(times[s] - prev)
                    prev = times[s]

    def pct(v: list[float]) -> dict:
        a = np.asarray(v) if v else None
        return {"n": len(v)} | (
            {"p50": round(float(np.percentile(a, 50)), 1), "p99": round(float(np.percentile(a, 99)), 1)}
            if a is not None
            else {}
        )

    return {s: {"since_input": pct(cum[s]), "step": pct(step[s])} for s in STAGES if cum[s]}


def main(argv: list[str] | None = None) -> None:
    bench_json, trace_dir = (argv or sys.argv[1:])[:2]
    data = json.loads(Path(bench_json).read_text())
    units = _units(Path(trace_dir))
    for sc in data.get("scenarios", []):
        paced = sc.get("paced") or {}
        if "window_ms" not in paced:
            continue
        rows = breakdown(units, tuple(paced["window_ms"]))
        print(f"\n{sc['name']}  paced {paced.get('rate_eps')} ev/s, {paced.get('events')} events")
        print(f"{'stage':<14}{'since input p50':>16}{'p99':>8}{'step p50':>10}{'p99':>8}")
        a = paced.get("input_acked_ms") or {}
        print(f"{'input acked':<14}{a.get('p50') or 0:>16.1f}{a.get('p99') or 0:>8.1f}")
        for s, r in rows.items():
            c, d = r["since_input"], r["step"]
            print(f"{s:<14}{c['p50']:>16.1f}{c['p99']:>8.1f}{d['p50']:>10.1f}{d['p99']:>8.1f}")
        v = paced.get("visible_latency_ms") or {}
        print(f"{'visible':<14}{v.get('p50') or 0:>16.1f}{v.get('p99') or 0:>8.1f}")


if __name__ == "__main__":
    main()
