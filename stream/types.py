"""Interfaces between the engine and its adapters (state backends, model sessions)."""
from __future__ import annotations

from typing import Any, Protocol

from stream.core.fencing import Fenced


class WindowStore(Protocol):
    async def append_ticks(self, items: list[tuple[str, bytes, int, int, int]], length: int, keep: int) -> list:
        """For each (symbol, packed record, partition, offset, ts): append it unless already there and
        return the ``length`` records ending at it (fewer while the window fills)."""


class EntityStore(Protocol):
    async def load(self, kind: str, ids: list[str], decode) -> dict[str, Fenced]:
        """Fenced entity states by id (fresh ones for ids never seen)."""

    async def save(self, kind: str, entities: dict[str, Fenced], encode) -> None:
        """Write the dirty entities, each guarded by the fence it was loaded with."""


class Scorer(Protocol):
    name: str
    version: str

    def run(self, feeds: dict[str, Any]) -> list[Any]: ...
