"""``finstream bench``: throughput, latency and memory against the real stack (never in unit tests).

Scenarios (each fed ``events`` synthetic events; ``FINSTREAM_BENCH_ONLY=onnx,engine,worker-risk,...``
picks some by name or prefix):

``onnx``                 raw onnxruntime per served model (manifest defaults, serving session options)
                         at batch sizes 1, 64, 512: p50/p99 ms per run and rows/s.
``engine-<job>``         the job's ``process()`` on ``batch_max`` batches with real Redis, no Kafka:
                         events/s, p50/p99 per batch, Redis round trips and where the batch time goes
                         (Redis client+server / onnxruntime / the rest, i.e. Python).
``faust-passthrough``    the worker's own Faust adapter around a do-nothing job: the Faust ceiling.
``faust-passthrough-alo`` the same under at_least_once (separates Faust's cost from exactly-once's).
``aiokafka-passthrough`` a plain aiokafka consume -> produce -> commit loop, for comparison.
``worker-<job>``         the real worker subprocess on its own topics / app id / Redis prefix:
                         end-to-end events/s, latency, RSS, CPU and start-up time.

If the settings' Kafka and Redis do not both answer, a private stack is started on free ports in a
temp dir (like the test fixture) and stopped afterwards. Results: ``<out>/bench-<UTC>.json`` and a
rich table on stdout. The data is synthetic (``stream.tools.synthetic``): fine for load, says nothing
about model quality; the risk scenarios replay real IEEE-CIS transactions instead when they are
cached (``stream.tools.cardfeed``; synthetic ones otherwise).

``<job>`` is every pipeline of the registry (``stream.pipelines``), fed by the load module it
names (``stream.tools.bench_load``). This module is the scenario list and the run; the parts live
by idea: ``bench_env`` (stack, machine, settings), ``bench_onnx``, ``bench_engine``,
``bench_kafka`` (with ``bench_specs`` and ``bench_e2e``: the subprocess runs), ``bench_report``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stream import pipelines
from stream.settings import Settings
from stream.tools.bench_env import console, machine_info, served_models, settings_used, stack_for
from stream.tools.bench_report import render, summarise

PASSTHROUGHS = ("faust-passthrough", "faust-passthrough-alo", "aiokafka-passthrough", "aiokafka-passthrough-eos")
SYNTHETIC_NOTE = (
    "Synthetic load data from stream.tools.synthetic (seeded random-walk ticks, simulated product "
    "interactions; card transactions as risk_feed says): valid for speed and memory, not for model quality."
)


def risk_feed(s: Settings) -> str:
    """Which card transactions the risk scenarios replay: the real IEEE-CIS rows once their wheel
    is cached (``make demo`` and the tests fetch it), synthetic ones before. Named in the JSON
    because the two feeds cost the engine differently (fewer repeated cards, more fields)."""
    from stream.tools.cardfeed import real_transactions

    return "ieee-cis" if real_transactions(s.home, limit=0) is not None else "synthetic"


def scenarios() -> tuple[str, ...]:
    """Every scenario in run order: the pipelines' own (``<kind>-<job>``) around the ceilings."""
    jobs = pipelines.names()
    return (
        "onnx",
        *(f"engine-{j}" for j in jobs),
        *(f"naive-{j}" for j in jobs),
        *PASSTHROUGHS,
        *(f"worker-{j}" for j in jobs),
    )


def selected(only: str | None) -> list[str]:
    known = scenarios()
    if not only:
        return list(known)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if not any(sc == w or sc.startswith(w) for sc in known)]
    if unknown:
        raise SystemExit(f"FINSTREAM_BENCH_ONLY: unknown scenario(s) {unknown}; known: {', '.join(known)}")
    return [sc for sc in known if any(sc == w or sc.startswith(w) for w in wanted)]


def skip_reason(name: str, models: dict) -> tuple[str, str] | None:
    """(kind, reason) when the manifest lacks a model the scenario needs, else None."""
    kind, _, job = name.partition("-")
    if name == "onnx" and not models:
        return "onnx", "no served model in the manifest"
    if kind in ("engine", "naive") and pipelines.get(job).slot not in models:
        return "engine", f"manifest has no default model for '{job}'"
    missing = [slot for slot in pipelines.slots() if slot not in models]
    if kind == "worker" and missing:
        return "worker", f"the worker needs every pipeline's slot; manifest lacks {missing}"
    return None


def run_scenario(s: Settings, name: str, events: int, log_dir: Path, external: bool) -> dict:
    """One scenario's result; a broken one is reported as failed so the others keep their numbers."""
    kind, _, job = name.partition("-")
    try:
        if name == "onnx":
            from stream.tools.bench_onnx import bench_onnx

            return bench_onnx(s)
        if kind in ("engine", "naive"):
            from stream.tools.bench_engine import bench_engine

            return bench_engine(s, job, events, naive=kind == "naive")
        from stream.tools.bench_kafka import bench_kafka

        return bench_kafka(s, name, events, log_dir, external=external)
    except Exception as exc:
        return {
            "name": name,
            "kind": kind,
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }


def main(out: Path = Path("bench_results"), events: int = 20000, settings: Settings | None = None) -> Path:
    from stream.settings import get_settings

    if events < 1:
        raise SystemExit("--events must be >= 1")
    only = os.environ.get("FINSTREAM_BENCH_ONLY") or None
    names = selected(only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    log_dir = out / f"bench-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out_console = console()
    t_start = time.monotonic()
    with stack_for(settings or get_settings()) as (s, stack_kind):
        models = served_models(s.model_dir)
        report = {
            "schema": 1,
            "tool": "finstream bench",
            "started_at": started.isoformat(timespec="seconds"),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "events": events,
            "only": only,
            "data": SYNTHETIC_NOTE,
            "risk_feed": risk_feed(s),
            "stack": stack_kind,
            "machine": machine_info(s),
            "settings": settings_used(s),
            "models": models,
            "scenarios": [],
        }
        for name in names:
            skipped = skip_reason(name, models)
            if skipped:
                sc = {"name": name, "kind": skipped[0], "status": "skipped", "reason": skipped[1]}
            else:
                out_console.print(f"[bold]>> {name}[/] ...", highlight=False)
                load = os.getloadavg()[0]
                t = time.monotonic()
                sc = run_scenario(s, name, events, log_dir, external=stack_kind == "external")
                sc["wall_s"] = round(time.monotonic() - t, 2)
                sc["loadavg_1m_before"] = round(load, 2)
                out_console.print(
                    f"   {name}: {sc['status']}"
                    + (f", {sc['throughput']:,.0f} /s" if sc.get("throughput") else "")
                    + f" ({sc['wall_s']:.1f}s)",
                    highlight=False,
                )
            report["scenarios"].append(sc)
    report["summary"] = summarise(report["scenarios"])
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["duration_s"] = round(time.monotonic() - t_start, 1)
    path = out / f"bench-{stamp}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str))
    out_console.print(render(report))
    for line in report["summary"].get("lines", []):
        out_console.print(f"  - {line}", highlight=False)
    out_console.print(
        f"results: {path} (subprocess logs in {log_dir}); {report['duration_s']:.0f}s in all", highlight=False
    )
    if any(sc["status"] in ("failed", "incomplete") for sc in report["scenarios"]):
        failed = [sc["name"] for sc in report["scenarios"] if sc["status"] in ("failed", "incomplete")]
        out_console.print(f"[red]failed or incomplete: {', '.join(failed)}[/]")
        raise SystemExit(1)
    return path


if __name__ == "__main__":
    main(events=int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
