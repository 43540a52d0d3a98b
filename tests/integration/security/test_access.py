"""Who may do what on the secure stack: nothing answers without TLS and credentials, a wrong
password is one clear line that does not show it, and the worker runs on its documented ACLs only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from stream.settings import REPO_ROOT
from stream.stack import manager, redis_server
from stream.stack.procs import StackError
from stream.worker import WorkerError, preflight
from tests.integration.security.secure import read_raw, secure_settings
from tests.integration.workers import produce

pytestmark = pytest.mark.integration


# --- refusals ------------------------------------------------------------------------------------
def test_plaintext_and_anonymous_clients_are_refused(secure_env):
    """Nothing on the secure stack answers without TLS and credentials."""
    s = secure_settings(secure_env)
    problem = manager.kafka.check(
        s.model_copy(update={"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None})
    )
    assert problem and "does not answer a PLAINTEXT client" in problem
    _, port = s.redis_host_port
    anonymous = s.model_copy(update={"redis_url": SecretStr(f"rediss://127.0.0.1:{port}/0")})
    problem = redis_server.check(anonymous)
    assert problem and "requires a user and password" in problem
    assert "not trusted" in redis_server.check(s.model_copy(update={"redis_ssl_cafile": None}))
    assert "not trusted" in manager.kafka.check(s.model_copy(update={"kafka_ssl_cafile": None}))


@pytest.mark.parametrize("which", ["kafka", "redis"])
def test_wrong_password_is_one_clear_line_without_the_password(secure_env, which, monkeypatch):
    if which == "kafka":
        bad = {"FINSTREAM_KAFKA_SASL_PASSWORD": "wrong-pw-kafka"}
        expected = "refused SASL user 'finstream-worker' (SCRAM-SHA-512): wrong username or password"
    else:
        port = secure_settings(secure_env).redis_host_port[1]
        bad = {"FINSTREAM_REDIS_URL": f"rediss://finstream-worker:wrong-pw-redis@127.0.0.1:{port}/0"}
        expected = "refused user 'finstream-worker': wrong username or password (FINSTREAM_REDIS_URL)"
    with pytest.raises(WorkerError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        preflight(secure_settings(secure_env, **bad))
    assert "\n" not in str(err.value) and "wrong-pw" not in str(err.value)

    monkeypatch.setattr(manager, "REFUSAL_GRACE_S", 1.0)
    with pytest.raises(StackError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        manager.start(secure_settings(secure_env, **bad), tie_to_parent=True, topics=False)  # `stack up`: fails fast

    commands = [(["stack", "status"], "error:")] + ([(["worker"], "ERROR")] if which == "kafka" else [])
    for command, marker in commands:
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", *command],
            cwd=REPO_ROOT,
            timeout=120,
            env={**os.environ, **secure_env, **bad, "FINSTREAM_WORKER_WEB_ENABLED": "false"},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if marker in line]
        assert len(errors) == 1 and expected in errors[0], done.stderr
        assert "wrong-pw" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_worker_user_has_only_its_acls(secured_run):
    """The secured broker enforces ACLs and the worker ran without being a super user: it may not
    read its own outputs (only write them), nor create topics outside its app's prefix."""
    from aiokafka.errors import TopicAuthorizationFailedError

    run, *_ = secured_run
    s = run.settings
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(read_raw(s, [s.topic_risk_scores], until=lambda g: False, timeout=30))
    with pytest.raises(Exception, match="TopicAuthorizationFailed"):
        produce(s, "not-granted-" + s.app_id, [(b"k", b"{}")])
