"""Process plumbing shared by the Kafka and Redis launchers: ports, PID files, spawn, stop, log tails.

Kept free of Kafka/Redis knowledge so that the safety rules live in one place: never start on a port
someone else holds, and never signal a PID unless its command line proves it is the process we started
(PIDs get recycled).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class StackError(RuntimeError):
    """A problem the user can fix (missing tool, busy port, crashed server); shown without a traceback."""


class Refusal(str):
    """Why a server is not usable that waiting will not fix (a wrong password, an untrusted
    certificate): a one-line message, told apart from "not ready yet" by its type."""


_children: dict[int, subprocess.Popen] = {}  # processes spawned by this Python process, so they can be reaped


def require_binary(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise StackError(f"`{name}` not found on PATH. {hint}")
    return path


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on or holds host:port (a connect succeeds or a bind fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports the kernel considers free right now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a reaped-later child of ours still has a /proc entry)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(pid_file: Path, marker: str) -> int | None:
    """The PID in pid_file if that process is alive and its command line contains marker, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid_alive(pid) and marker in cmdline(pid):
        return pid
    return None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: a crashed test run leaves no server behind


def spawn(argv: list[str], log_file: Path, *, tie_to_parent: bool) -> subprocess.Popen:
    """Start argv with stdout+stderr appended to log_file. Detached (own session) unless tie_to_parent."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=not tie_to_parent,
            preexec_fn=_die_with_parent if tie_to_parent else None,
            close_fds=True,
        )
    _children[proc.pid] = proc
    return proc


def exited(pid: int) -> int | None:
    """Exit code if pid has ended (reaping it when it is our child), else None."""
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll()
    return None if pid_alive(pid) else -1


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait up to timeout, then SIGKILL; returns when the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if exited(pid) is not None:
                break
            time.sleep(0.1)
        else:
            continue
        break
    proc = _children.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Stop a child started in a session of its own (``start_new_session``) with all it started:
    ``sig`` to its process group, SIGKILL to the group if it has not exited within ``timeout``.
    Only a Popen of ours, never a PID read from elsewhere; nothing to do once it has exited."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def log_tail(log_file: Path, lines: int = 25) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return f"(no log at {log_file})"
    return "\n".join(text.splitlines()[-lines:])


def apt_install(pkgs: list[str], hint: str) -> None:
    """``apt-get install`` Debian packages without recommends and without starting their services
    (a temporary policy-rc.d keeps e.g. redis-server or prometheus from starting system instances);
    one ``apt-get update`` and a retry when the first try fails. Root only (callers check)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs]
    try:
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            if subprocess.run(cmd, env=env).returncode != 0:
                raise StackError(f"apt-get could not install {', '.join(pkgs)}. {hint}")
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
