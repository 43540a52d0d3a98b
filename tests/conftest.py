"""Shared fixtures: a private, real Kafka (KRaft) + Redis stack per pytest session, started on first use.

Never mocks: integration tests talk to the real broker and server that ``stream.stack.manager`` runs.
The stack binds free ports in its own temp directory, so it never collides with a developer's
``finstream stack up``; the Kafka jars are shared from the usual home (``finstream stack install``).

Fixtures
--------
``stack``          session ``Settings`` pointing at the private stack (env vars set, settings cache cleared).
``redis_prefix``   a Redis key prefix unique to this test; its keys are deleted afterwards.
``redis_client``   ``redis.Redis`` on that stack. Never flushed: the stack may be an external one
                   others use, so each test keeps to its own ``redis_prefix``.
``unique_topic``   ``unique_topic(prefix="t") -> str``: a fresh Kafka topic name per call, unique per test.

Set ``FINSTREAM_TEST_EXTERNAL_STACK=1`` to use an already running stack from the current ``FINSTREAM_*``
settings instead (e.g. the docker-compose one); it is then neither started nor stopped.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from stream import settings as settings_mod
from stream.settings import Settings

INTEGRATION_DIR = Path(__file__).parent / "integration"
STACK_FIXTURES = {"stack", "redis_client", "redis_prefix", "unique_topic"}


def pytest_collection_modifyitems(config, items):
    """Tests under tests/integration, or using the stack fixtures, get the ``integration`` marker."""
    for item in items:
        in_dir = INTEGRATION_DIR in Path(str(item.fspath)).parents
        if in_dir or STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Settings:
    """Start (once) a private Kafka + Redis on free ports and yield the Settings that point at it."""
    if os.environ.get("FINSTREAM_TEST_EXTERNAL_STACK") == "1":
        settings_mod.get_settings.cache_clear()
        s = settings_mod.get_settings()
        from stream.stack.manager import ensure_topics

        ensure_topics(s)
        yield s
        return

    from stream.stack import manager
    from stream.stack.procs import free_ports

    home = Settings().home  # shared jar cache; the servers' files go to stack_dir below
    kafka_port, ctrl_port, redis_port = free_ports(3)
    env = {
        "FINSTREAM_HOME": str(home),
        "FINSTREAM_STACK_DIR": str(tmp_path_factory.mktemp("stack")),
        "FINSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "FINSTREAM_KAFKA_CONTROLLER_PORT": str(ctrl_port),
        "FINSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    settings_mod.get_settings.cache_clear()
    s = settings_mod.get_settings()
    try:
        manager.start(s, tie_to_parent=True)
        yield s
    finally:
        manager.stop(s)
        mp.undo()
        settings_mod.get_settings.cache_clear()


@pytest.fixture
def redis_prefix(stack: Settings):
    """A key prefix of this test's own; whatever it wrote under it on the stack's Redis is deleted."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(stack.redis_url.get_secret_value())
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_client(stack: Settings):
    import redis

    client = redis.Redis.from_url(stack.redis_url.get_secret_value())
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def unique_topic(request, stack: Settings):
    """Factory of Kafka topic names unique to this test and call (auto-created on first produce)."""
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:120]

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{base}-{uuid.uuid4().hex[:8]}"

    return make
