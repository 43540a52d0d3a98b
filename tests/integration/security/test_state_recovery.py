"""The worker's state survives Redis: a crashed local-stack Redis comes back with it (append-only
file), and a lost one is rebuilt from Kafka into a fresh prefix."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from stream.settings import REPO_ROOT
from stream.stack import manager, redis_server
from stream.stack.procs import read_pid, stop_pid
from stream.tools.rebuild import RebuildError, rebuild
from tests.integration.security.secure import entity_state, redis_state, secure_settings

pytestmark = pytest.mark.integration


def test_local_stack_redis_restart_keeps_the_worker_state(secured_run, secure_env):
    """Issue 7 item 4: the stack's Redis writes an append-only file, so a restart keeps state."""
    run, *_ = secured_run
    s = secure_settings(secure_env)
    before = redis_state(s, run.settings.redis_key_prefix)
    assert len(before) >= 20 + 8
    pid = read_pid(redis_server.pid_file(s), redis_server.marker(s))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # a crash, not a clean shutdown: only the append-only file can keep state
    stop_pid(pid, timeout=15)  # reaps it
    assert not redis_server.ready(s)
    pids = manager.start(s, tie_to_parent=True, topics=False)
    assert pids["redis"] != pid
    assert redis_state(s, run.settings.redis_key_prefix) == before


def test_rebuild_from_kafka_into_a_fresh_prefix_equals_the_lost_state(secured_run, secure_env):
    """When Redis data is lost: `finstream rebuild` replays the input topics up to the group's
    committed offsets into a new prefix, giving the same state (fences included) the worker had."""
    run, *_ = secured_run
    s = run.settings
    fresh = s.redis_key_prefix + "-rebuilt"
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "rebuild", "--prefix", fresh, "--from", "earliest"],
        cwd=REPO_ROOT,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rebuilt, lost = entity_state(redis_state(s, fresh)), entity_state(redis_state(s, s.redis_key_prefix))
    assert len(lost) >= 20 + 8 and rebuilt == lost
    with pytest.raises(RebuildError, match="pick a fresh prefix"):
        asyncio.run(rebuild(s, fresh, None))

    async def while_a_worker_runs():
        from aiokafka import AIOKafkaConsumer

        member = AIOKafkaConsumer(
            s.topic_transactions, **s.kafka_client_options(), group_id=s.app_id, enable_auto_commit=False
        )
        await member.start()
        try:
            while not member.assignment():
                await member.getmany(timeout_ms=200)
            await rebuild(s, fresh + "-2", None, wait_s=0)
        finally:
            await member.stop()

    with pytest.raises(RebuildError, match="still run in group"):
        asyncio.run(asyncio.wait_for(while_a_worker_runs(), 60))
