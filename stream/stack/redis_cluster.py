"""A private three-node Redis Cluster (Debian's redis-server in cluster mode, no replicas) on free
ports, for tests that must see the cluster's rules (one slot per script, no scripts in
pipelines): ``start(dir)`` -> ``Cluster``; ``stop(cluster)`` stops exactly the nodes it started.

Each node also binds its cluster bus at port + 10000, so only ports up to 55535 whose bus port is
free are used; a node that still dies at start (a port taken in between) is retried on new ports,
and its log (``<dir>/<attempt>-<port>/redis.log``) says why.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stream.stack import redis_server
from stream.stack.procs import StackError, free_ports, port_in_use, spawn, stop_pid

NODES = 3
BUS_OFFSET = 10_000


@dataclass
class Cluster:
    ports: list[int]
    procs: list[subprocess.Popen]
    base: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"


def _cluster_ports() -> list[int]:
    ports: list[int] = []
    while len(ports) < NODES:
        ports += [
            p
            for p in free_ports(8)
            if p <= 65535 - BUS_OFFSET and not port_in_use("127.0.0.1", p + BUS_OFFSET) and p not in ports
        ]
    return ports[:NODES]


def _ping(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def _start_nodes(base: Path, attempts: int) -> tuple[list[subprocess.Popen], list[int]]:
    binary = redis_server.binary()
    if binary is None:
        raise StackError(f"redis-server is not installed. {redis_server.HINT}")
    for attempt in range(attempts):
        ports = _cluster_ports()
        procs = []
        for p in ports:
            d = base / f"{attempt}-{p}"
            d.mkdir(parents=True)
            procs.append(
                spawn(
                    [
                        binary,
                        "--port",
                        str(p),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(d),
                    ],
                    d / "redis.log",
                    tie_to_parent=True,
                )
            )
        deadline, up = time.monotonic() + 20, set[int]()
        while len(up) < NODES and time.monotonic() < deadline and all(pr.poll() is None for pr in procs):
            up |= {p for p in set(ports) - up if _ping(p)}
            time.sleep(0.1)
        if len(up) == NODES:
            return procs, ports
        for pr in procs:
            stop_pid(pr.pid, timeout=10)
    raise StackError(f"could not start {NODES} cluster-mode redis-servers; see the node logs under {base}")


def start(base: Path, attempts: int = 5, timeout: float = 60.0) -> Cluster:
    """Start the nodes, join them with ``redis-cli --cluster create`` and wait for ``cluster_state:ok``."""
    import redis

    procs, ports = _start_nodes(Path(base), attempts)
    cluster = Cluster(ports, procs, Path(base))
    try:
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"  # Debian's redis-server depends on redis-tools
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while redis.Redis(host="127.0.0.1", port=ports[0]).cluster("info").get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise StackError(f"redis cluster on {ports} did not reach cluster_state:ok within {timeout:.0f} s")
            time.sleep(0.2)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: Cluster) -> None:
    for proc in cluster.procs:
        stop_pid(proc.pid, timeout=10)
