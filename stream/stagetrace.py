"""Stage timestamps of delivered units, for diagnosing where a record's latency goes.

Why: the bench sees only the end-to-end figure (input timestamp -> visible to a read_committed
reader). With ``FINSTREAM_STAGE_TRACE_DIR`` set, every delivered unit (one source partition's share
of a processed batch) is written as one JSON line: its source records' Kafka timestamps and
wall-clock times (ms) of each stage it passed (fetched, taken by the agent, processed, taken by
its delivery lane, sent into the open transaction, the commit's start, sends acknowledged, offsets
added, committed). ``stream.tools.stage_breakdown`` turns these into p50/p99 per stage. Unset
(the default), nothing is recorded: the stages cost one ``is None`` check per batch.
"""

from __future__ import annotations

import os
import time

import orjson


def now_ms() -> float:
    return time.time() * 1000.0


class StageTrace:
    """One JSON-lines file per process (``<dir>/<app id>-<pid>.jsonl``)."""

    def __init__(self, directory, app_id: str):
        os.makedirs(directory, exist_ok=True)
        self._f = open(os.path.join(directory, f"{app_id}-{os.getpid()}.jsonl"), "ab")  # noqa: SIM115

    def write(self, source, ts: list[int], fetched: list[float], marks: dict[str, float]) -> None:
        line = {"tp": None if source is None else f"{source.topic}:{source.partition}", "ts": ts}
        line["fetched"] = fetched
        line["marks"] = marks
        self._f.write(orjson.dumps(line) + b"\n")
        self._f.flush()


def open_trace(settings) -> StageTrace | None:
    d = getattr(settings, "stage_trace_dir", None)
    return None if d is None else StageTrace(d, settings.app_id)
