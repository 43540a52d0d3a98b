"""Where a ``finstream bench`` run happens: the stack (the settings' own, or a private one), the
machine, the settings and the served models, recorded in the report so a number can be judged
(and compared) against what produced it. The console the bench prints to lives here too.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

from stream import pipelines
from stream.settings import Settings


# --- manifest / machine -----------------------------------------------------------------------------------
def served_models(model_dir: Path) -> dict[str, dict]:
    """slot -> {name, version, file} for the manifest defaults present (missing slots left out)."""
    from stream.core.manifest import ManifestError, read_manifest

    try:
        m = read_manifest(model_dir)
    except ManifestError:
        return {}
    out = {}
    for slot in pipelines.slots():
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
        "kafka_jvm_opts",
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
def console():
    from rich.console import Console

    return Console(width=max(150, int(os.environ.get("COLUMNS", "0") or 0)))


def _say(msg: str) -> None:
    console().print(msg, highlight=False)
