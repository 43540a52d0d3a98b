"""Fixtures for end-to-end tests (helpers live in ``workers.py``)."""

from __future__ import annotations

import pytest

from tests.integration.workers import WorkerRun


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
    """A real three-node Redis Cluster (``stream.stack.redis_cluster``) on free ports: its URL."""
    from stream.stack import redis_cluster as rc

    cluster = rc.start(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.url
    finally:
        rc.stop(cluster)
