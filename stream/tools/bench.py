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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import orjson

from stream.settings import Settings

JOBS = ("forecast", "risk", "recommend")
ONNX_BATCHES = (1, 64, 512)
NAIVE_SAMPLE = 2000  # events a naive-<job> scenario runs (one at a time: slow by design)
SCENARIOS = (
    "onnx",
    *(f"engine-{j}" for j in JOBS),
    *(f"naive-{j}" for j in JOBS),
    "faust-passthrough",
    "faust-passthrough-alo",
    "aiokafka-passthrough",
    "aiokafka-passthrough-eos",
    *(f"worker-{j}" for j in JOBS),
)
SYNTHETIC_NOTE = (
    "Synthetic load data from stream.tools.synthetic (seeded random-walk ticks, simulated card "
    "transactions, simulated product interactions): valid for speed and memory, not for model quality."
)


# --- events --------------------------------------------------------------------------------------------
def tick_symbols(n: int) -> int:
    """Symbols for n ticks: ~200 ticks each (so most ticks have a full window), 1..50."""
    return max(1, min(50, n // 200))


BENCH_TICKS = {"start_ms": 631_152_000_000, "step_ms": 86_400_000}  # daily ticks from 1990: each closes a 1d bar


def make_events(job: str, n: int, seed: int = 7, symbols: int | None = None) -> list[tuple[bytes, bytes]]:
    """n (key, value) records for the job's input topic, keyed like a producer would (entity id)."""
    from itertools import islice

    from stream.tools import synthetic

    if job == "forecast":
        syms = [f"SYN-{i:02d}" for i in range(symbols or tick_symbols(n))]
        it = synthetic.tick_stream(symbols=syms, seed=seed, **BENCH_TICKS)
        return [(r["symbol"].encode(), orjson.dumps(r)) for r in islice(it, n)]
    if job == "risk":
        from stream.settings import get_settings
        from stream.tools.cardfeed import real_transactions

        real = real_transactions(get_settings().home, start_share=0.0, limit=n)  # real IEEE-CIS rows when cached
        if real is not None:
            return list(real)
        it = synthetic.transaction_stream(n_accounts=2000, seed=seed)
        return [(r["account_id"].encode(), orjson.dumps(r)) for r in islice(it, n)]
    if job == "recommend":
        it = synthetic.user_event_stream(n_users=1000, seed=seed)
        return [(r["user_id"].encode(), orjson.dumps(r)) for r in islice(it, n)]
    raise ValueError(job)


def forecast_warming(records: list[tuple[bytes, bytes]], window: int) -> int:
    """Ticks that give no forecast on a fresh state: the first ``window`` + 1 of each symbol (with
    one tick per bar, tick k closes bar k-1, and a forecast needs ``window`` + 1 closed bars)."""
    per_symbol = Counter(k for k, _ in records)
    return sum(min(c, window + 1) for c in per_symbol.values())


def forecast_window(model_dir: Path) -> int:
    from stream.core.manifest import read_manifest

    return int(read_manifest(model_dir).default("forecast").inputs[0].shape[1])


def _pct(values, q) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def _r(x, nd=2):
    return None if x is None else round(float(x), nd)


# --- manifest / machine -----------------------------------------------------------------------------------
def served_models(model_dir: Path) -> dict[str, dict]:
    """slot -> {name, version, file} for the manifest defaults present (missing slots left out)."""
    from stream.core.manifest import ManifestError, read_manifest

    try:
        m = read_manifest(model_dir)
    except ManifestError:
        return {}
    out = {}
    for slot in JOBS:
        try:
            c = m.default(slot)
        except ManifestError:
            continue
        out[slot] = {"name": c.name, "version": c.version, "file": c.file, "family": c.family}
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(s: Settings) -> dict:
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    import onnxruntime

    redis_version = None
    with contextlib.suppress(Exception):
        import redis

        r = redis.Redis.from_url(s.redis_url.get_secret_value())
        redis_version = r.info("server").get("redis_version")
        r.close()
    return {
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "cpu": cpu,
        "mem_gb": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "faust_streaming": _version("faust-streaming"),
        "aiokafka": _version("aiokafka"),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "numpy": _version("numpy"),
        "orjson": _version("orjson"),
        "kafka_broker": s.kafka_version,
        "redis_server": redis_version,
    }


def settings_used(s: Settings) -> dict:
    keys = (
        "kafka_bootstrap",
        "topic_partitions",
        "batch_max",
        "batch_within_s",
        "recommend_k",
        "processing_guarantee",
        "publish_risk_scores",
        "model_dir",
        "model_poll_s",
        "redis_cluster",
        "kafka_heap",
        "log_level",
        "commit_max_events",
        "delivery_inflight",
    )
    d = {k: getattr(s, k) for k in keys}
    d["commit_interval_s"] = s.commit_interval_s  # the guarantee's default unless set
    d["model_dir"] = str(d["model_dir"])
    d["redis_url"] = s.redis_url_redacted
    d["bench_overrides"] = {
        "publish_risk_scores": True,
        "worker_web_enabled": False,
        "log_level": "info",
        "note": "risk scores are published in engine-risk and worker-risk so every "
        "transaction has an output to account for and time",
    }
    return d


# --- stack ----------------------------------------------------------------------------------------------
def _reachable(s: Settings) -> bool:
    from stream.stack import kafka, redis_server

    return redis_server.ready(s) and kafka.ready(s)


@contextlib.contextmanager
def stack_for(settings: Settings):
    """The settings' stack if Kafka and Redis answer, else a private one on free ports (stopped after)."""
    from stream import settings as settings_mod

    if _reachable(settings):
        yield settings, "external"
        return
    from stream.stack import manager
    from stream.stack.procs import free_ports

    tmp = Path(tempfile.mkdtemp(prefix="finstream-bench-stack-"))
    kafka_port, ctrl_port, redis_port = free_ports(3)
    env = {
        "FINSTREAM_HOME": str(settings.home),
        "FINSTREAM_STACK_DIR": str(tmp),
        "FINSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "FINSTREAM_KAFKA_CONTROLLER_PORT": str(ctrl_port),
        "FINSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings_mod.get_settings.cache_clear()
    s = Settings()
    _say(
        f"[dim]no stack at {settings.kafka_bootstrap} / {settings.redis_url_redacted}: starting a private one "
        f"(kafka :{kafka_port}, redis :{redis_port}) in {tmp}[/]"
    )
    try:
        t = time.monotonic()
        manager.start(s, tie_to_parent=True)
        _say(f"[dim]private stack ready in {time.monotonic() - t:.1f}s[/]")
        yield s, "private"
    finally:
        manager.stop(s)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        settings_mod.get_settings.cache_clear()
        shutil.rmtree(tmp, ignore_errors=True)


def stack_pids(s: Settings) -> dict[str, int]:
    from stream.stack import manager

    return {f"{p.name}_broker" if p.name == "kafka" else f"{p.name}_server": p.pid for p in manager.probe(s) if p.pid}


# --- console --------------------------------------------------------------------------------------------
def _console():
    from rich.console import Console

    return Console(width=max(150, int(os.environ.get("COLUMNS", "0") or 0)))


def _say(msg: str) -> None:
    _console().print(msg, highlight=False)


# --- onnx -------------------------------------------------------------------------------------------------
def _feeds(card, batch: int, rng: np.random.Generator) -> dict:
    feeds = {}
    for t in card.inputs:
        shape = [batch if (d is None or not isinstance(d, int)) else d for d in t.shape]
        if t.name == "holdings":
            feeds[t.name] = (rng.random(shape) < 0.15).astype(t.dtype)
        elif np.issubdtype(np.dtype(t.dtype), np.integer):
            feeds[t.name] = rng.integers(0, 2, size=shape).astype(t.dtype)
        else:
            feeds[t.name] = rng.standard_normal(shape).astype(t.dtype)
    return feeds


def bench_onnx(s: Settings, budget_s: float = 1.0, max_runs: int = 500) -> dict:
    from stream.core.manifest import read_manifest
    from stream.serving.models import load_model

    manifest = read_manifest(s.model_dir)
    rng = np.random.default_rng(0)
    rows = []
    for slot, info in served_models(s.model_dir).items():
        card = manifest.get(info["name"])
        model = load_model(card, s.model_dir)  # same SHA check and session options as serving
        for b in ONNX_BATCHES:
            feeds = _feeds(card, b, rng)
            sess = model.session  # raw onnxruntime: no padding / slicing of ServedModel.run
            for _ in range(5):
                sess.run(None, feeds)
            times = []
            start = time.perf_counter()
            while len(times) < max_runs and (len(times) < 20 or time.perf_counter() - start < budget_s):
                t = time.perf_counter()
                sess.run(None, feeds)
                times.append(time.perf_counter() - t)
            ms = np.asarray(times) * 1000
            rows.append(
                {
                    "slot": slot,
                    "model": card.name,
                    "version": card.version,
                    "family": card.family,
                    "batch": b,
                    "runs": len(times),
                    "p50_ms": _r(np.percentile(ms, 50), 4),
                    "p99_ms": _r(np.percentile(ms, 99), 4),
                    "mean_ms": _r(ms.mean(), 4),
                    "rows_per_s": _r(b / (ms.mean() / 1000), 1),
                }
            )
    return {
        "name": "onnx",
        "kind": "onnx",
        "status": "ok",
        "results": rows,
        "throughput": min((r["rows_per_s"] for r in rows), default=0.0),
        "note": "InferenceSession.run on the served session (serving's session options: 1 intra-op thread, "
        "no spinning, ORT_ENABLE_ALL); random inputs; the engine's own calls are in engine-<job>",
    }


# --- kafka runs ---------------------------------------------------------------------------------------------
def warmup_events(job: str, s: Settings) -> tuple[list[tuple[bytes, bytes]], int]:
    """Warm-up records on entities of their own, and how many outputs they give."""
    if job == "forecast":
        window = forecast_window(s.model_dir)
        it = __import__("stream.tools.synthetic", fromlist=["tick_stream"]).tick_stream(
            symbols=("WARM-A", "WARM-B"), seed=99, **BENCH_TICKS
        )
        recs = [(r["symbol"].encode(), orjson.dumps(r)) for r, _ in zip(it, range(2 * (window + 10)))]
        return recs, len(recs) - forecast_warming(recs, window)
    recs = make_events(job, 100, seed=99)
    return recs, len(recs)


def bench_kafka(s: Settings, name: str, events: int, log_dir: Path, external: bool) -> dict:
    from stream.tools import bench_e2e as e2e

    if name.startswith("worker-"):
        job = name.removeprefix("worker-")
        spec = e2e.worker_spec(s, job)
        kind = "worker"
    else:
        job = "recommend"  # any small JSON events; the bytes are not looked at
        mode, _, variant = name.partition("-passthrough")
        spec = e2e.passthrough_spec(s, mode, at_least_once=variant == "-alo", exactly_once=variant == "-eos")
        kind = "passthrough"
    both = make_events(job, 2 * events, symbols=tick_symbols(events))  # flood, then a prefix of the rest paced
    records, paced = both[:events], both[events:]
    window = forecast_window(s.model_dir) if kind == "worker" and job == "forecast" else 0
    warming = forecast_warming(records, window) if window else 0

    def paced_expected(m: int) -> int:
        return m - (forecast_warming(records + paced[:m], window) - warming) if window else m

    warm, warm_expected = warmup_events(job, s)
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
            asyncio.run(e2e.delete_topics(spec.settings, e2e.run_topics(spec)))
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


# --- report -------------------------------------------------------------------------------------------------
def _fmt(x, nd=1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}" if isinstance(x, float) else f"{x:,}"


def render(report: dict):
    from rich.table import Table

    n = report["events"]
    table = Table(
        title=f"finstream bench: {n:,} synthetic events per scenario "
        f"({report['machine']['cores']} cores, {report['stack']} stack, "
        f"batch_max {report['settings']['batch_max']}, {report['settings']['processing_guarantee']})",
        caption=f"load average at start {report['loadavg_start'][0]:.2f}; throughput = first produce -> last "
        f"output; p50/p99 = output - input Kafka timestamp under the flood (mostly queueing); paced = "
        f"at half the measured throughput; µs CPU/ev = the subprocess's CPU per event",
    )
    for col, just in (
        ("scenario", "left"),
        ("events", "right"),
        ("throughput", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("paced p50/p99 ms", "right"),
        ("details", "left"),
    ):
        table.add_column(col, justify=just, overflow="fold")
    for sc in report["scenarios"]:
        if sc["status"] in ("skipped", "failed"):
            table.add_row(
                sc["name"], "-", "-", "-", "-", "-", f"[yellow]{sc['status']}[/]: {sc.get('reason', '')[:160]}"
            )
            continue
        if sc["kind"] == "onnx":
            for r in sc["results"]:
                table.add_row(
                    f"onnx {r['slot']} ({r['model']})",
                    f"batch {r['batch']}",
                    f"{_fmt(r['rows_per_s'])} rows/s",
                    _fmt(r["p50_ms"], 3),
                    _fmt(r["p99_ms"], 3),
                    "-",
                    f"{r['runs']} runs",
                )
            continue
        c = sc["counts"]
        acct = (
            ("[green]all accounted[/]" if c["accounted"] else "[red]NOT accounted[/]")
            + f" (out {c['outputs']:,}, dead {c['dead_letters']:,}, warm {c['warming_up']:,}"
            + (f", alerts {c['alerts']:,}" if "alerts" in c else "")
            + (f", dups {c['duplicates']}" if c.get("duplicates") else "")
            + ")"
        )
        if sc["kind"] in ("engine", "naive"):
            sp = sc["time_split_pct"]
            details = (
                f"redis {sc['redis']['round_trips_per_batch']:g} RT/batch, "
                f"{sc['redis']['commands_per_event']:g} cmd/ev; time: redis {sp['redis']}%, "
                f"onnx {sp['onnxruntime']}% ({sc['onnx']['rows_per_call']:g} rows/call), "
                f"python {sp['python']}%; {acct}"
            )
            table.add_row(
                sc["name"],
                f"{sc['events']:,}",
                f"{_fmt(sc['throughput'])} ev/s",
                _fmt(sc["latency_ms"]["p50"], 2),
                _fmt(sc["latency_ms"]["p99"], 2),
                "-",
                details,
            )
        else:
            cpu = sc["cpu_pct"]
            vis = sc["visible_latency_ms"]
            pc = sc.get("paced")
            details = (
                f"{_fmt(sc['cpu_us_per_event'].get('process'), 0)} µs CPU/ev; "
                f"start {sc['startup_s']:.1f}s, RSS {_fmt(sc['rss_mb']['ready'])}->"
                f"{_fmt(sc['rss_mb']['hwm'])} MB (HWM), CPU proc {_fmt(cpu.get('process'), 0)}% "
                f"kafka {_fmt(cpu.get('kafka_broker'), 0)}% redis {_fmt(cpu.get('redis_server'), 0)}% "
                f"bench {_fmt(cpu.get('bench'), 0)}%; visible p50/p99 {_fmt(vis['p50'], 0)}/"
                f"{_fmt(vis['p99'], 0)} ms"
                + (
                    f" (paced {_fmt(pc['visible_latency_ms']['p50'], 0)}/{_fmt(pc['visible_latency_ms']['p99'], 0)})"
                    if pc
                    else ""
                )
                + f"; {acct}"
            )
            if sc["status"] != "ok":
                details = f"[red]{sc['status']}[/] " + details
            pc = sc.get("paced")
            paced = (
                (f"{_fmt(pc['latency_ms']['p50'], 0)}/{_fmt(pc['latency_ms']['p99'], 0)} @{_fmt(pc['rate_eps'], 0)}/s")
                if pc
                else "-"
            )
            table.add_row(
                sc["name"],
                f"{sc['events']:,}",
                f"{_fmt(sc['throughput'])} ev/s",
                _fmt(sc["latency_ms"]["p50"], 0),
                _fmt(sc["latency_ms"]["p99"], 0),
                paced,
                details,
            )
    return table


def summarise(scenarios: list[dict]) -> dict:
    """Ratios that say where the time goes (only for the scenarios that ran)."""
    ok = {sc["name"]: sc for sc in scenarios if sc.get("status") == "ok"}
    eps = {k: v.get("throughput") for k, v in ok.items()}
    out: dict = {"lines": []}
    if "faust-passthrough" in eps and "aiokafka-passthrough" in eps:
        r = eps["aiokafka-passthrough"] / eps["faust-passthrough"]
        out["aiokafka_over_faust_passthrough"] = round(r, 2)
        out["lines"].append(
            f"plain aiokafka passes {r:.1f}x the events/s of the Faust adapter "
            f"({eps['aiokafka-passthrough']:,.0f} vs {eps['faust-passthrough']:,.0f} ev/s)"
        )
    if "aiokafka-passthrough-eos" in eps and "faust-passthrough" in eps:
        r = eps["faust-passthrough"] / eps["aiokafka-passthrough-eos"]
        out["faust_over_aiokafka_eos"] = round(r, 2)
        out["lines"].append(
            f"exactly-once: the Faust adapter passes {r:.0%} of the plain aiokafka loop with the same "
            f"delivery ({eps['faust-passthrough']:,.0f} vs {eps['aiokafka-passthrough-eos']:,.0f} ev/s)"
        )
    for job in JOBS:
        w, e, nv = eps.get(f"worker-{job}"), eps.get(f"engine-{job}"), eps.get(f"naive-{job}")
        ceiling = eps.get("aiokafka-passthrough-eos")
        if nv and (e or w):
            key = f"speedup_{job}"
            out[key] = {
                "engine_over_naive": round(e / nv, 1) if e else None,
                "worker_over_naive": round(w / nv, 1) if w else None,
            }
            out["lines"].append(
                f"{job}: naive (one event at a time) {nv:,.0f} ev/s; batched engine "
                + (f"{e / nv:,.0f}x" if e else "n/a")
                + ", worker end to end "
                + (f"{w / nv:,.0f}x" if w else "n/a")
            )
        if w and ceiling:
            out.setdefault(f"worker_{job}", {})["worker_share_of_aiokafka_eos"] = round(w / ceiling, 2)
    for job in JOBS:
        w, e, f = eps.get(f"worker-{job}"), eps.get(f"engine-{job}"), eps.get("faust-passthrough")
        if w and e:
            key = f"worker_{job}"
            out.setdefault(key, {}).update(
                {
                    "engine_over_worker": round(e / w, 2),
                    "worker_share_of_faust_ceiling": round(w / f, 2) if f else None,
                    "engine_us_per_event": round(1e6 / e, 1),
                    "worker_us_per_event": round(1e6 / w, 1),
                }
            )
            out["lines"].append(
                f"{job}: engine alone {e:,.0f} ev/s ({1e6 / e:,.0f} µs/ev), worker end to end {w:,.0f} ev/s "
                f"({1e6 / w:,.0f} µs/ev)" + (f" = {w / f:.0%} of the Faust pass-through ceiling" if f else "")
            )
    return out


# --- main ---------------------------------------------------------------------------------------------------
def selected(only: str | None) -> list[str]:
    if not only:
        return list(SCENARIOS)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    unknown = [w for w in wanted if not any(sc == w or sc.startswith(w) for sc in SCENARIOS)]
    if unknown:
        raise SystemExit(f"FINSTREAM_BENCH_ONLY: unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    return [sc for sc in SCENARIOS if any(sc == w or sc.startswith(w) for w in wanted)]


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
    console = _console()
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
            "stack": stack_kind,
            "machine": machine_info(s),
            "settings": settings_used(s),
            "models": models,
            "scenarios": [],
        }
        for name in names:
            job = name.split("-", 1)[1] if "-" in name and name.split("-", 1)[1] in JOBS else None
            missing = [j for j in JOBS if j not in models]
            if name == "onnx" and not models:
                sc = {"name": name, "kind": "onnx", "status": "skipped", "reason": "no served model in the manifest"}
            elif name.startswith(("engine-", "naive-")) and job not in models:
                sc = {
                    "name": name,
                    "kind": "engine",
                    "status": "skipped",
                    "reason": f"manifest has no default model for '{job}'",
                }
            elif name.startswith("worker-") and missing:
                sc = {
                    "name": name,
                    "kind": "worker",
                    "status": "skipped",
                    "reason": f"the worker needs all three slots; manifest lacks {missing}",
                }
            else:
                console.print(f"[bold]>> {name}[/] ...", highlight=False)
                load = os.getloadavg()[0]
                t = time.monotonic()
                try:
                    if name == "onnx":
                        sc = bench_onnx(s)
                    elif name.startswith(("engine-", "naive-")):
                        from stream.tools.bench_engine import bench_engine

                        sc = bench_engine(s, job, events, naive=name.startswith("naive-"))
                    else:
                        sc = bench_kafka(s, name, events, log_dir, external=stack_kind == "external")
                except Exception as exc:  # one broken scenario must not lose the others' numbers
                    sc = {
                        "name": name,
                        "kind": name.split("-")[0],
                        "status": "failed",
                        "reason": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc(),
                    }
                sc["wall_s"] = round(time.monotonic() - t, 2)
                sc["loadavg_1m_before"] = round(load, 2)
                console.print(
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
    console.print(render(report))
    for line in report["summary"].get("lines", []):
        console.print(f"  - {line}", highlight=False)
    console.print(
        f"results: {path} (subprocess logs in {log_dir}); {report['duration_s']:.0f}s in all", highlight=False
    )
    if any(sc["status"] in ("failed", "incomplete") for sc in report["scenarios"]):
        failed = [sc["name"] for sc in report["scenarios"] if sc["status"] in ("failed", "incomplete")]
        console.print(f"[red]failed or incomplete: {', '.join(failed)}[/]")
        raise SystemExit(1)
    return path


if __name__ == "__main__":
    main(events=int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
