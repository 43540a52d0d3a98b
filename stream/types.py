"""Interfaces between the engine and its adapters (state backends, model sessions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from stream.core.fencing import Fenced


class EntityStore(Protocol):
    """Per-entity state of a job, under the fence of ``stream.core.fencing`` (all a job uses:
    ``Job.fold`` loads a batch's entities once and saves them once). Backends:
    ``stream.state.redis_store.RedisState`` (live) and ``stream.state.memory.MemoryState``
    (backtests, job unit tests); their shared rules live in ``stream.state.entities`` and
    ``tests/integration/state_contract/`` holds them to the same cases (docs/state.md)."""

    async def load(self, kind: str, ids: list[str], decode: Callable[[Any], Any]) -> dict[str, Fenced[Any]]:
        """Fenced entity states by id, one per distinct id (``decode(None)`` for ids never seen
        or expired). ``kind`` names the key space (``bar``, ``card``, ``acct``, ``user``)."""

    async def load_snapshots(self, kind: str, wanted: dict[str, list[int]]) -> dict[str, dict[int, Any]]:
        """The stored output snapshots at the given offsets (redeliveries), by entity id: a load
        leaves them in the store (``stream.state.entities``, form 3). Offsets the store no longer
        holds are missing (``stream.core.fencing.ReplayGap`` follows)."""

    async def save(self, kind: str, entities: dict[str, Fenced[Any]], encode: Callable[[Any], Any]) -> None:
        """Write the dirty entities, each only if its stored fence is still the one it was loaded
        with (compare-and-set), and set each written key's expiry to the kind's retention. The
        others are written; then ``stream.state.entities.StateConflict`` names the lost ones."""


class Scorer(Protocol):
    name: str
    version: str

    def run(self, feeds: dict[str, Any]) -> list[Any]: ...
