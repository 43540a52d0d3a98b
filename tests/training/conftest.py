"""Training test fixtures: ``rebuild_run``, the rebuild test's ``finstream train --models-only``.

That run is by far the longest test (about ten minutes of one process that mostly keeps one core
busy: single-threaded tree and logistic fits). When the rebuild test is among the selected tests,
the run starts in the background as soon as collection finishes, one nice level down, so the rest
of the suite runs beside it on the other core instead of after it; the test then waits for it and
checks exactly what it checked when it started the command itself. Whatever is still running at
the end of the session (an interrupted run, ``-x``) is stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from stream.stack import procs

REBUILD_TEST = "test_finstream_train_rebuilds_the_committed_models"
REBUILD_TIMEOUT_S = 2400.0  # from the start of the run (beside the other tests), wherever the test sits
_RUN = pytest.StashKey["TrainRun"]()


class TrainRun:
    """``finstream train --models-only --out <temp dir>`` in the background, started like the test
    stack's servers (``stream.stack.procs.spawn``: output to a log file, ended with this process)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="finstream-rebuild-"))
        self.out = self.dir / "models"
        self.log = self.dir / "train.log"
        self.started = time.monotonic()
        argv = [sys.executable, "-m", "stream.cli", "train", "--models-only", "--out", str(self.out)]
        self.proc = procs.spawn(argv, self.log, tie_to_parent=True)
        os.setpriority(os.PRIO_PROCESS, self.proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + 5)  # tests keep their CPU

    def wait(self) -> tuple[int, str, float]:
        """(exit code, the log's tail, seconds since the start); a run past its deadline is stopped."""
        try:
            code = self.proc.wait(timeout=max(1.0, self.started + REBUILD_TIMEOUT_S - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            code = -1
        return code, self.log.read_text(errors="replace")[-6000:], time.monotonic() - self.started

    def stop(self) -> None:
        procs.stop_pid(self.proc.pid, timeout=10.0)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.name == REBUILD_TEST for item in session.items) and _RUN not in session.config.stash:
        session.config.stash[_RUN] = TrainRun()


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(_RUN, None)
    if run is not None:
        run.remove()


@pytest.fixture
def rebuild_run(request) -> TrainRun:
    """The background rebuild (started here if collection did not start it)."""
    stash = request.config.stash
    if _RUN not in stash:
        stash[_RUN] = TrainRun()
    return stash[_RUN]
