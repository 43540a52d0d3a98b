"""Fixtures for end-to-end tests (helpers live in ``workers.py``)."""
from __future__ import annotations

import pytest
from workers import WorkerRun


@pytest.fixture
def worker_run(stack, tmp_path):
    runs: list[WorkerRun] = []

    def make(**kw) -> WorkerRun:
        run = WorkerRun(stack, tmp_path, **kw)
        runs.append(run)
        return run

    yield make
    for r in runs:
        r.stop()


@pytest.fixture(scope="session")
def redis_cluster(stack, tmp_path_factory):
    """A real three-node Redis Cluster (Debian's redis-server, cluster mode) on free ports."""
    import shutil
    import subprocess
    import time

    import redis

    from stream.stack import redis_server
    from stream.stack.procs import free_ports

    ports = free_ports(3)
    base = tmp_path_factory.mktemp("redis-cluster")
    procs = []
    for p in ports:
        d = base / str(p)
        d.mkdir()
        procs.append(subprocess.Popen(
            [redis_server.binary(), "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no", "--dir", str(d)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    try:
        for p in ports:
            deadline = time.monotonic() + 20
            while True:
                try:
                    redis.Redis(port=p).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while redis.Redis(port=ports[0]).cluster("info").get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not become ok")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
