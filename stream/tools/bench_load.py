"""What ``finstream bench`` feeds each pipeline: the load module the pipeline names (``Pipeline.load``).

The pipeline declares the module by name (like its ``trainer``) because the runtime never imports
the tools; this is the one place that reads it, so the bench knows no pipeline by name. The module
provides:

``load_records(n, seed=7, spread=None) -> [(key, value), ...]``
    n records for the pipeline's input topic, keyed like a producer would (the entity id), over as
    many entities as ``spread`` records would use (default n: a flood and its paced tail share them).
``silent(records, settings) -> int`` (optional, default 0)
    how many of these records give no output on a fresh state (forecast: the warming ticks), so
    the bench knows how many outputs to wait for.
``warmup(settings) -> [(key, value), ...]`` (optional)
    warm-up records on entities of their own; default: 100 records of another seed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from stream import pipelines
from stream.settings import Settings

Records = list[tuple[bytes, bytes]]


def load_module(job: str) -> ModuleType:
    """The load module of pipeline ``job``; a clear error when it declares none."""
    p = pipelines.get(job)
    if not p.load:
        raise ValueError(f"pipeline {job!r} declares no load module (Pipeline.load): the bench cannot feed it")
    return importlib.import_module(p.load)


def make_events(job: str, n: int, seed: int = 7, spread: int | None = None) -> Records:
    """n (key, value) records for the pipeline's input topic."""
    return load_module(job).load_records(n, seed=seed, spread=spread)


def silent(job: str, records: Records, s: Settings) -> int:
    """Records that give no output on a fresh state (0 unless the load module says otherwise)."""
    count = getattr(load_module(job), "silent", None)
    return count(records, s) if count else 0


def warmup_events(job: str, s: Settings) -> tuple[Records, int]:
    """Warm-up records on entities of their own, and how many outputs they give."""
    own = getattr(load_module(job), "warmup", None)
    recs = own(s) if own else make_events(job, 100, seed=99)
    return recs, len(recs) - silent(job, recs, s)


def flood_and_paced(
    load: Callable[..., Records], silent_of: Callable[[Records], int], events: int
) -> tuple[Records, Records, int, Callable[[int], int]]:
    """A Kafka run's inputs: ``events`` flood records and as many again for its paced phase (the
    same entities: ``load(2 * events, spread=events)``), how many of the flood give no output
    (``silent_of``), and ``paced_expected(m)``: the outputs of the first m paced records, which
    follow the flood on the same state."""
    both = load(2 * events, spread=events)
    records, paced = both[:events], both[events:]
    warming = silent_of(records)

    def paced_expected(m: int) -> int:
        return m - (silent_of(records + paced[:m]) - warming)

    return records, paced, warming, paced_expected
