"""The worker refuses to start, in one clear line, when Redis, Kafka or the models are missing."""

import os
import subprocess
import sys

import pytest

from stream.settings import REPO_ROOT, Settings
from stream.stack.procs import free_ports
from stream.worker import WorkerError, preflight


def test_unreachable_redis_is_named_without_its_password(stack):
    [port] = free_ports(1)
    s = Settings(kafka_bootstrap=stack.kafka_bootstrap, redis_url=f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(WorkerError, match="Redis at redis://\\*\\*\\*@127.0.0.1") as err:
        preflight(s)
    assert "hunter2" not in str(err.value)


def test_unreachable_kafka_is_named(stack):
    [port] = free_ports(1)
    s = Settings(kafka_bootstrap=f"127.0.0.1:{port}", redis_url=stack.redis_url)
    with pytest.raises(WorkerError, match=f"Kafka at 127.0.0.1:{port} is not reachable"):
        preflight(s)


def test_missing_models_exit_1_with_a_hint(stack, tmp_path):
    env = {"FINSTREAM_MODEL_DIR": str(tmp_path), "FINSTREAM_WORKER_WEB_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "finstream train" in done.stderr and "Traceback" not in done.stderr
