"""`finstream stack` lifecycle on its own free ports and temp dir (separate from the session stack)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from stream.settings import Settings
from stream.stack import manager
from stream.stack.procs import free_ports, pid_alive, port_in_use


def _private_settings(tmp_path, **over) -> Settings:
    kafka_port, ctrl_port, redis_port = free_ports(3)
    fields = dict(
        home=Settings().home,  # shared Kafka jar cache
        stack_dir=tmp_path / "stack",
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        kafka_controller_port=ctrl_port,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        kafka_heap="256m",
    )
    return Settings(**{**fields, **over})


def test_up_status_down(tmp_path, capsys):
    s = _private_settings(tmp_path)
    ports = [s.kafka_host_port[1], s.kafka_controller_port, s.redis_host_port[1]]
    try:
        manager.up(s)
        probes = {p.name: p for p in manager.probe(s)}
        assert probes["kafka"].ready and probes["redis"].ready
        pids = {n: p.pid for n, p in probes.items()}
        assert all(pids.values()) and all(pid_alive(p) for p in pids.values())
        assert (s.stack_path / "kafka" / "kafka.pid").read_text().strip() == str(pids["kafka"])
        argv = open(f"/proc/{pids['kafka']}/cmdline").read().split("\0")  # the broker's JVM options
        assert {"-Xms256m", "-Xmx256m", *s.kafka_jvm_opts.split()} <= set(argv)

        assert manager.status(s) == 0
        assert "ready" in capsys.readouterr().out

        manager.up(s)  # idempotent: same processes
        assert {p.name: p.pid for p in manager.probe(s)} == pids
    finally:
        manager.down(s)
    assert not any(pid_alive(p) for p in pids.values())
    assert not any(port_in_use("127.0.0.1", p) for p in ports)
    assert manager.status(s) == 1
    assert not (s.stack_path / "kafka" / "kafka.pid").exists()


def test_port_taken_is_a_clear_error(tmp_path):
    s = _private_settings(tmp_path)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", s.kafka_host_port[1]))
    squatter.listen()
    try:
        with pytest.raises(manager.StackError, match=rf"port 127.0.0.1:{s.kafka_host_port[1]} is already in use"):
            manager.start(s)
        with pytest.raises(SystemExit):  # the CLI face turns it into exit code 1, no traceback
            manager.up(s)
    finally:
        squatter.close()
    assert not any(p.pid for p in manager.probe(s))


def test_crash_at_start_shows_log_tail(tmp_path):
    """A broker whose storage belongs to another node dies at start: the error carries its log."""
    s = _private_settings(tmp_path)
    data = s.stack_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\ncluster.id=8wQf9Zk1Q4mGq2m2wJvV3A\nnode.id=7\n")
    with pytest.raises(manager.StackError, match="kafka .* exited with code") as exc:
        manager.start(s)
    assert "Stored node id 7 doesn't match" in str(exc.value)  # the broker's own words, from kafka.log
    assert not any(p.pid for p in manager.probe(s))


def test_servers_listen_on_loopback_only(stack):
    from tests.integration.workers import listening_addresses

    ports = {
        "kafka": stack.kafka_host_port[1],
        "controller": stack.kafka_controller_port,
        "redis": stack.redis_host_port[1],
    }
    bound = {name: listening_addresses(port) for name, port in ports.items()}
    assert bound == {name: {"127.0.0.1"} for name in ports}


def test_listening_addresses_sees_a_wildcard_bind():
    """The check above would catch a server on 0.0.0.0."""
    from tests.integration.workers import listening_addresses

    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    s.listen()
    try:
        assert listening_addresses(s.getsockname()[1]) == {"0.0.0.0"}
    finally:
        s.close()


def test_stack_status_redacts_secrets(stack, tmp_path):
    """`finstream stack status` (the CLI, as a user runs it) never prints the Redis or SASL password."""
    host, port = stack.redis_host_port
    env = {
        **os.environ,
        "FINSTREAM_STACK_DIR": str(tmp_path),
        "FINSTREAM_REDIS_URL": f"redis://admin:Hunter2-redis-pw@{host}:{port}/0",
        "FINSTREAM_KAFKA_SASL_PASSWORD": "Hunter2-sasl-pw",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "stack", "status"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = done.stdout + done.stderr
    assert "redis" in text and f"{host}:{port}" in text, text  # the row is there ...
    assert "Hunter2" not in text, text  # ... without the passwords
