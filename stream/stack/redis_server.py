"""Debian's ``redis-server`` started by hand with its own flags (never the systemd service).

No persistence (``--save "" --appendonly no``): the stack's Redis is a cache of stream state that the
worker rebuilds from Kafka, and tests want a clean server.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from stream.settings import Settings
from stream.stack.procs import StackError

NAME = "redis"
HINT = "Install it with: apt-get install -y redis-server (as root)"


def binary() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )


def install() -> bool:
    """Install redis-server via apt when missing (root only). True if it installed something."""
    if binary():
        return False
    if os.geteuid() != 0:
        raise StackError(f"redis-server is not installed and we are not root. {HINT}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:  # keep the package's init script from starting a system Redis on 6379
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
            if subprocess.run(cmd, env=env).returncode != 0:
                raise StackError(f"apt-get could not install redis-server. {HINT}")
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    return True


def stack_dir(settings: Settings) -> Path:
    return settings.stack_path / NAME


def pid_file(settings: Settings) -> Path:
    return stack_dir(settings) / "redis.pid"


def log_file(settings: Settings) -> Path:
    return stack_dir(settings) / "redis.log"


def marker(settings: Settings) -> str:
    return "redis-server"  # redis rewrites its process title to "redis-server 127.0.0.1:<port>"


def ports(settings: Settings) -> list[int]:
    return [settings.redis_host_port[1]]


def prepare(settings: Settings) -> list[str]:
    """Return the server's argv (installing it first when possible)."""
    url = urlsplit(settings.redis_url.get_secret_value())
    if url.scheme != "redis":
        raise StackError(f"`finstream stack` runs a plain redis:// server; FINSTREAM_REDIS_URL is {settings.redis_url_redacted}")
    host, port = settings.redis_host_port
    if host not in ("127.0.0.1", "localhost"):
        raise StackError(f"FINSTREAM_REDIS_URL points at {host}; `finstream stack` only runs a local Redis")
    install()
    exe = binary()
    if not exe:
        raise StackError(f"redis-server not found. {HINT}")
    data = stack_dir(settings) / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data), "--daemonize", "no",
            "--save", "", "--appendonly", "no", "--logfile", ""]
    if url.password:
        argv += ["--requirepass", url.password]
    return argv


def client(settings: Settings, timeout: float = 2.0):
    import redis

    return redis.Redis.from_url(settings.redis_url.get_secret_value(), socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def ready(settings: Settings, timeout: float = 2.0) -> bool:
    """True when the server answers PING."""
    try:
        with client(settings, timeout) as r:
            return bool(r.ping())
    except Exception:
        return False
