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
