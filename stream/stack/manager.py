"""``finstream stack install | up | down | status`` and the same logic for the test-suite fixture.

``start``/``stop``/``probe`` raise :class:`StackError` and return data (used by tests/conftest.py);
``install``/``up``/``down``/``status`` are their CLI faces: rich output, exit codes, no tracebacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

from rich.console import Console
from rich.table import Table

from stream.settings import Settings, get_settings
from stream.stack import kafka, kafka_security, redis_server
from stream.stack.procs import Refusal, StackError, exited, log_tail, port_in_use, read_pid, spawn, stop_pid

__all__ = ["StackError", "ensure_topics", "install", "up", "down", "status", "start", "stop", "probe"]

ensure_topics = kafka.ensure_topics
COMPONENTS: tuple[ModuleType, ...] = (kafka, redis_server)
REFUSAL_GRACE_S = 10.0
READY_TIMEOUT = {kafka.NAME: 120.0, redis_server.NAME: 20.0}
ENV_FOR_PORT = {
    kafka.NAME: "FINSTREAM_KAFKA_BOOTSTRAP / FINSTREAM_KAFKA_CONTROLLER_PORT",
    redis_server.NAME: "FINSTREAM_REDIS_URL",
}

out = Console()
err = Console(stderr=True)


@dataclass
class Probe:
    name: str
    pid: int | None
    address: str
    ready: bool
    problem: str | None = None  # why not ready, in one line (e.g. a refused password), never a secret


def _address(c: ModuleType, s: Settings) -> str:
    if c is kafka:
        return f"{s.kafka_bootstrap} (ctrl :{s.kafka_controller_port})"
    return s.redis_url_redacted


def _start_one(c: ModuleType, s: Settings, tie_to_parent: bool) -> int | None:
    """Start component c unless ours already runs; returns the PID if this call started it."""
    pid_file = c.pid_file(s)
    pid = read_pid(pid_file, c.marker(s))
    if pid is not None:
        _wait_ready(c, s, pid)
        return None
    pid_file.unlink(missing_ok=True)
    for port in c.ports(s):
        if port_in_use("127.0.0.1", port):
            raise StackError(
                f"{c.NAME}: port 127.0.0.1:{port} is already in use by another process (not one started by "
                f"`finstream stack` from {s.stack_path}). Stop it or pick another port via {ENV_FOR_PORT[c.NAME]}."
            )
    argv = c.prepare(s)
    proc = spawn(argv, c.log_file(s), tie_to_parent=tie_to_parent)
    pid_file.write_text(f"{proc.pid}\n")
    try:
        _wait_ready(c, s, proc.pid)
    except BaseException:
        stop_pid(proc.pid)
        pid_file.unlink(missing_ok=True)
        raise
    return proc.pid


def _wait_ready(c: ModuleType, s: Settings, pid: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT[c.NAME]
    problem, refused_since = None, None
    while time.monotonic() < deadline:
        code = exited(pid)
        if code is not None:
            raise StackError(
                f"{c.NAME} (pid {pid}) exited with code {code} while starting. "
                f"Last lines of {c.log_file(s)}:\n{log_tail(c.log_file(s))}"
            )
        problem = c.check(s)
        if problem is None:
            return
        # A refused password or certificate is final, unless the server is still loading its users.
        refused_since = (refused_since or time.monotonic()) if isinstance(problem, Refusal) else None
        if refused_since is not None and time.monotonic() - refused_since > REFUSAL_GRACE_S:
            raise StackError(problem)
        time.sleep(0.3)
    raise StackError(
        f"{c.NAME} (pid {pid}) not ready after {READY_TIMEOUT[c.NAME]:.0f}s ({problem}). "
        f"Last lines of {c.log_file(s)}:\n{log_tail(c.log_file(s))}"
    )


def start(settings: Settings | None = None, *, tie_to_parent: bool = False, topics: bool = True) -> dict[str, int]:
    """Start Kafka and Redis (idempotent) and create the project's topics. Returns {name: pid} of all.

    On failure, whatever this call started is stopped again before the error propagates.
    """
    s = settings or get_settings()
    s.stack_path.mkdir(parents=True, exist_ok=True)
    started: list[tuple[ModuleType, int]] = []
    try:
        for c in COMPONENTS:
            pid = _start_one(c, s, tie_to_parent)
            if pid is not None:
                started.append((c, pid))
        if topics and kafka_security.authorizes(s):
            kafka_security.grant_worker(s)  # topics made by the broker user, ACLs for the worker's
        elif topics:
            kafka.ensure_topics(s)
    except BaseException:
        for c, pid in reversed(started):
            stop_pid(pid)
            c.pid_file(s).unlink(missing_ok=True)
        raise
    return {c.NAME: read_pid(c.pid_file(s), c.marker(s)) for c in COMPONENTS}


def stop(settings: Settings | None = None) -> dict[str, int]:
    """Stop what the PID files name (only if the PID still is our process). Returns {name: pid} stopped."""
    s = settings or get_settings()
    stopped = {}
    for c in reversed(COMPONENTS):  # Redis first: Kafka's controlled shutdown is the slow one
        pid = read_pid(c.pid_file(s), c.marker(s))
        if pid is not None:
            stop_pid(pid, timeout=60.0 if c is kafka else 15.0)
            stopped[c.NAME] = pid
        c.pid_file(s).unlink(missing_ok=True)
    return stopped


def probe(settings: Settings | None = None) -> list[Probe]:
    s = settings or get_settings()
    probes = []
    for c in COMPONENTS:
        problem = c.check(s)
        probes.append(Probe(c.NAME, read_pid(c.pid_file(s), c.marker(s)), _address(c, s), problem is None, problem))
    return probes


# --- CLI faces ---------------------------------------------------------------------------------------
def _fail(e: StackError) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
    raise SystemExit(1)


def install(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    try:
        if not kafka.jars_ready(s):
            out.print(f"Kafka {s.kafka_version} jars: resolving with mvn into {kafka.libs_dir(s)} ...")
        ran = kafka.install_jars(s)
        out.print(f"Kafka {s.kafka_version} jars: {'resolved' if ran else 'already there'} ({kafka.libs_dir(s)})")
        ran = redis_server.install()
        out.print(f"redis-server: {'installed' if ran else 'already installed'} ({redis_server.binary()})")
        from stream.stack import (
            tools,  # observe: chromium + driver (browser test), promtool (ops checks), openssl (secured stack)
        )

        out.print(
            f"chromium, chromium-driver, prometheus, openssl: {', '.join(tools.install()) or 'already installed'}"
        )
    except StackError as e:
        _fail(e)


def up(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    try:
        pids = start(s)
    except StackError as e:
        _fail(e)
    out.print(f"[green]stack up[/] (kafka pid {pids['kafka']}, redis pid {pids['redis']}; files in {s.stack_path})")
    status(s)


def down(settings: Settings | None = None) -> None:
    s = settings or get_settings()
    stopped = stop(s)
    if stopped:
        out.print("stopped " + ", ".join(f"{n} (pid {p})" for n, p in stopped.items()))
    else:
        out.print(f"nothing to stop (no live PID files in {s.stack_path})")


def status(settings: Settings | None = None) -> int:
    s = settings or get_settings()
    table = Table(title=f"finstream stack ({s.stack_path})")
    for col in ("component", "pid", "address", "alive", "ready"):
        table.add_column(col)
    probes = probe(s)
    for p in probes:
        alive = "yes" if p.pid else ("external" if p.ready else "no")
        table.add_row(
            p.name, str(p.pid or "-"), p.address, alive, "[green]ready[/]" if p.ready else "[red]not ready[/]"
        )
    out.print(table)
    for p in probes:
        if p.problem:
            err.print(f"[bold red]error:[/] {p.problem}", highlight=False, markup=True, soft_wrap=True)
    return 0 if all(p.ready for p in probes) else 1
