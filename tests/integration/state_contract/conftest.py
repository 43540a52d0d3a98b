"""The ``backend`` fixture: each contract case runs on memory, a redis-server and a Redis Cluster."""

from __future__ import annotations

import uuid

import pytest

from stream.state.memory import MemoryState
from tests.integration.state_contract.backends import Backend, redis_backend


@pytest.fixture(params=["memory", "server", "cluster"])
def backend(request):
    prefix = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        store: dict = {}
        probe = MemoryState(prefix, store=store)
        yield Backend(
            "memory",
            prefix,
            lambda **kw: MemoryState(prefix, store=store, **kw),
            lambda: sorted(k for k in probe.live_keys() if k.startswith(prefix + ":")),
            probe.pttl,
            lambda k: (probe.raw(k) or (None,))[0],
        )
        return
    if request.param == "server":
        url, cluster = request.getfixturevalue("stack").redis_url.get_secret_value(), False
    else:
        url, cluster = request.getfixturevalue("redis_cluster"), True
    b, sync = redis_backend(request.param, url, cluster, prefix)
    yield b
    for key in b.stored_keys():
        sync.delete(key)
    sync.close()
