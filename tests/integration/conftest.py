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


def _start_cluster_nodes(base, attempts: int = 5):
    """Three cluster-mode redis-servers on free ports. Each node also binds its cluster bus at
    port + 10000, so ports above 55535 are unusable (redis-server exits at start) and the bus port
    must be free too; a node that still dies at start (a port taken in between) is retried on new
    ports, and its log says why."""
    import subprocess
    import time

    import redis

    from stream.stack import redis_server
    from stream.stack.procs import free_ports, port_in_use

    def cluster_ports() -> list[int]:
        ports: list[int] = []
        while len(ports) < 3:
            ports += [p for p in free_ports(8) if p <= 55535 and not port_in_use("127.0.0.1", p + 10000)
                      and p not in ports]
        return ports[:3]

    for attempt in range(attempts):
        ports = cluster_ports()
        procs = []
        for p in ports:
            d = base / f"{attempt}-{p}"
            d.mkdir()
            procs.append(subprocess.Popen(
                [redis_server.binary(), "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no", "--dir", str(d),
                 "--logfile", str(d / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 20
        up = set()
        while len(up) < 3 and time.monotonic() < deadline and all(pr.poll() is None for pr in procs):
            for p in set(ports) - up:
                try:
                    redis.Redis(host="127.0.0.1", port=p, socket_connect_timeout=1).ping()
                    up.add(p)
                except redis.ConnectionError:
                    pass
            time.sleep(0.1)
        if len(up) == 3:
            return procs, ports
        for pr in procs:
            pr.kill()
            pr.wait(10)
    raise RuntimeError(f"could not start a 3-node redis cluster; see the node logs under {base}")


@pytest.fixture(scope="session")
def redis_cluster(stack, tmp_path_factory):
    """A real three-node Redis Cluster (Debian's redis-server, cluster mode) on free ports."""
    import shutil
    import subprocess
    import time

    import redis

    procs, ports = _start_cluster_nodes(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while redis.Redis(host="127.0.0.1", port=ports[0]).cluster("info").get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not become ok")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
