"""The pipelines: one module per use case, each declaring ``PIPELINE``; the registry reads them.

To follow a tick to a forecast, read ``stream/pipelines/forecast.py``: its input topic and
contract, key, state, model slot, outputs and the Job that does the work. Adding a use case is
adding one module here (with its Job in ``stream.serving`` and its training module) and its
tests: the worker, ``finstream replay``, the manifest check, ``finstream train``, the reports,
the bench and the demo list the pipelines from this registry, never by hand.

The pure core (``stream.core``) never imports this package: the declarations name adapters' Jobs.

A fourth pipeline needs, besides its module here and its tests: its Job (``stream.serving``),
its input parser (``stream.core.contracts``), its training module, its load module for the bench
(``stream.tools.bench_load``) and the retention of its state kind (``stream.settings``). Its topics
(``FINSTREAM_TOPIC_<NAME>``, ``Settings.topic_<name>``) and its model tasks (the manifest's
vocabulary, ``stream.core.manifest``) come from its declaration.
``tests/unit/pipelines/test_registry.py`` registers such a pipeline and checks that everything
else picks it up.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from stream import topics as topic_names
from stream.core import manifest
from stream.pipelines.base import InputContract, Pipeline

__all__ = [
    "InputContract",
    "Pipeline",
    "PARSERS",
    "all_pipelines",
    "by_kind",
    "by_slot",
    "get",
    "names",
    "register",
    "registered",
    "slots",
    "tasks",
    "topics",
]

_REGISTRY: dict[str, Pipeline] = {}
_NOT_PIPELINES = {"base"}


def _discover() -> None:
    """Import every module of this package that declares ``PIPELINE`` (adding a module adds a pipeline)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_PIPELINES:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        declared = getattr(module, "PIPELINE", None)
        if not isinstance(declared, Pipeline):
            raise TypeError(f"{module.__name__} declares no PIPELINE")
        register(declared)


def register(p: Pipeline) -> None:
    """Add a pipeline; its name, kind, input topic and slot must be its own."""
    for other in _REGISTRY.values():
        clash = [
            what
            for what, a, b in (
                ("name", p.name, other.name),
                ("kind", p.kind, other.kind),
                ("input topic", p.input_topic, other.input_topic),
                ("slot", p.slot, other.slot),
            )
            if a == b
        ]
        if clash and other is not p:
            raise ValueError(f"pipeline {p.name!r} has the same {', '.join(clash)} as {other.name!r}")
    _REGISTRY[p.name] = p
    topic_names.declare(topics())


@contextmanager
def registered(p: Pipeline) -> Iterator[Pipeline]:
    """Register ``p`` for the duration of a ``with`` block (tests of what derives from the registry)."""
    register(p)
    try:
        yield p
    finally:
        _REGISTRY.pop(p.name, None)
        topic_names.declare(topics())


def all_pipelines() -> list[Pipeline]:
    """Every pipeline, in declared order."""
    return sorted(_REGISTRY.values(), key=lambda p: (p.order, p.name))


def names() -> tuple[str, ...]:
    return tuple(p.name for p in all_pipelines())


def slots() -> tuple[str, ...]:
    """The model slots the manifest's defaults may name (``forecast@1h`` is the forecast slot's)."""
    return tuple(p.slot for p in all_pipelines())


def tasks() -> frozenset[str]:
    """The model tasks the pipelines declare: the manifest's vocabulary (a card naming another is refused)."""
    return frozenset().union(*(p.tasks for p in _REGISTRY.values()))


def topics() -> tuple[str, ...]:
    """Every topic the pipelines declare, by default name (``FINSTREAM_TOPIC_<NAME>`` renames one)."""
    return tuple(dict.fromkeys(t for p in all_pipelines() for t in p.topics))


def get(name: str) -> Pipeline:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown pipeline {name!r} (expected one of {', '.join(names())})") from None


def by_kind(kind: str) -> Pipeline:
    for p in all_pipelines():
        if p.kind == kind:
            return p
    raise KeyError(f"unknown kind {kind!r} (expected one of {', '.join(p.kind for p in all_pipelines())})")


def by_slot(slot: str) -> Pipeline:
    """The pipeline serving ``slot`` (``forecast@1h`` -> forecast)."""
    base = slot.split("@")[0]
    for p in all_pipelines():
        if p.slot == base:
            return p
    raise KeyError(f"unknown slot {slot!r} (expected one of {', '.join(slots())})")


class _Parsers(Mapping):
    """kind -> contract parser, read from the registry at each lookup."""

    def __getitem__(self, kind: str):
        try:
            return by_kind(kind).input.parse
        except KeyError:
            raise KeyError(kind) from None

    def __iter__(self):
        return iter([p.kind for p in all_pipelines()])

    def __len__(self) -> int:
        return len(_REGISTRY)


PARSERS: Mapping = _Parsers()

manifest.use_task_vocabulary(tasks)
_discover()
