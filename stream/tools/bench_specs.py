"""What one Kafka scenario of ``finstream bench`` runs: the subprocess (the real worker or a
pass-through), its environment and its own topics, app id and Redis prefix, and what ``/proc``
says about it. ``stream.tools.bench_e2e`` drives a run; this only describes and starts it.

The worker's topics come from its pipeline (``stream.pipelines``): input, main output (one per
input, counted with the dead letters) and the other outputs (counted beside it, e.g. risk alerts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from stream import pipelines
from stream.settings import REPO_ROOT, Settings, settings_from_env, topic_env
from stream.stack.procs import stop_group

CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKER_READY = "[^Worker]: Ready"  # Faust's log line once the worker's partitions are assigned


# --- /proc ------------------------------------------------------------------------------------------
def proc_status_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def _die_with_parent() -> None:  # child side, between fork and exec
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- one run ----------------------------------------------------------------------------------------
@dataclass
class RunSpec:
    name: str
    argv: list[str]
    env: dict
    settings: Settings  # the subprocess's view (topics, partitions, guarantee)
    src_topic: str
    done_topics: list[str]  # outputs that account for an input (primary + dead letters)
    extra_topics: list[str] = field(default_factory=list)  # also counted (e.g. risk alerts), not needed
    ready_marker: str = WORKER_READY
    dead_topic: str | None = None


class Proc:
    def __init__(self, spec: RunSpec, log_path: Path):
        self.spec = spec
        self.log_path = log_path
        self.log_fh = open(log_path, "wb")
        self.popen = subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.popen.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_alive(self, what: str) -> None:
        """Raises, with the log's tail, if the process has exited (``what``: when, for the message)."""
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.spec.name}: process exited with {self.popen.returncode} {what}:\n{self.log_tail()}"
            )

    def ready(self, since: float, timeout: float) -> bool:
        """Whether the process has logged its spec's ready line; raises, with the log's tail, once
        it has exited or ``timeout`` s have passed since ``since`` (monotonic) without it. One rule
        for the measured process and the scale-out's other workers; the caller waits between calls."""
        if self.spec.ready_marker in self.log_text():
            return True
        self.check_alive("before ready")
        if time.monotonic() - since > timeout:
            raise RuntimeError(f"{self.spec.name}: not ready after {timeout:.0f}s:\n{self.log_tail()}")
        return False

    def stop(self, timeout: float = 20.0) -> None:
        stop_group(self.popen, timeout=timeout)
        self.log_fh.close()


async def create_topics(s: Settings, topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    admin = AIOKafkaAdminClient(**s.kafka_client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            resp = await admin.create_topics([NewTopic(t, s.topic_partitions, 1) for t in missing])
            for topic, code, *rest in resp.topic_errors:
                if code != 0 and for_code(code) is not TopicAlreadyExistsError:
                    raise RuntimeError(f"creating topic {topic!r} failed: {for_code(code).__name__} {rest}")
    finally:
        await admin.close()


async def delete_topics(s: Settings, topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**s.kafka_client_options())
    await admin.start()
    try:
        await admin.delete_topics(list(dict.fromkeys(topics)))
    except Exception:
        pass
    finally:
        await admin.close()


# --- specs ------------------------------------------------------------------------------------------
def _base_env(s: Settings, tag: str) -> dict:
    return {
        **os.environ,
        "FINSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "FINSTREAM_REDIS_URL": s.redis_url.get_secret_value(),
        "FINSTREAM_APP_ID": f"fs-bench-{tag}",
        "FINSTREAM_WORKER_WEB_ENABLED": "false",
        "FINSTREAM_LOG_LEVEL": "info",  # the start-up marker is an info line
        "PYTHONUNBUFFERED": "1",
    }


def worker_spec(s: Settings, job: str) -> RunSpec:
    """The real worker (``python -m stream.cli worker``) with its own app id, topics and Redis prefix."""
    tag = f"{job}-{uuid.uuid4().hex[:8]}"
    env = _base_env(s, tag)
    env.update(
        {
            "FINSTREAM_REDIS_KEY_PREFIX": f"bench-{tag}",
            "FINSTREAM_PUBLISH_RISK_SCORES": "true",  # one output per transaction, so each is accounted for
            "FINSTREAM_MODEL_DIR": str(s.model_dir),
        }
    )
    env.update(topic_env(lambda topic: f"bench-{topic}-{tag}"))
    ws = settings_from_env(env)
    p = pipelines.get(job)
    main, *others = p.output_topics(ws)
    return RunSpec(
        name=f"worker-{job}",
        argv=[sys.executable, "-m", "stream.cli", "worker"],
        env=env,
        settings=ws,
        src_topic=p.topic(ws),
        done_topics=[main, ws.topic_dead_letters],
        extra_topics=others,
        dead_topic=ws.topic_dead_letters,
    )


def passthrough_spec(s: Settings, mode: str, at_least_once: bool = False, exactly_once: bool = False) -> RunSpec:
    """``exactly_once`` (aiokafka only): the plain loop with the worker's own delivery lanes."""
    from stream.tools.bench_passthrough import READY_LINE

    tag = f"pt-{mode}-{uuid.uuid4().hex[:8]}"
    env = _base_env(s, tag)
    if at_least_once:
        env["FINSTREAM_PROCESSING_GUARANTEE"] = "at_least_once"
    ws = settings_from_env(env)
    src, dst = f"bench-in-{tag}", f"bench-out-{tag}"
    name = f"{mode}-passthrough" + ("-alo" if at_least_once else "-eos" if exactly_once else "")
    run_mode = f"{mode}-eos" if exactly_once else mode
    return RunSpec(
        name=name,
        argv=[sys.executable, "-m", "stream.tools.bench_passthrough", run_mode, src, dst],
        env=env,
        settings=ws,
        src_topic=src,
        done_topics=[dst],
        ready_marker=WORKER_READY if mode == "faust" else READY_LINE,
    )


def run_topics(spec: RunSpec) -> list[str]:
    return [spec.src_topic, *spec.done_topics, *spec.extra_topics]
