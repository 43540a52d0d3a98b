"""In-process state backend: the Redis backend's semantics in one dict, for backtests and job
unit tests (no server). Not a stand-in for Redis in integration tests: those use real servers.

Same as ``RedisState`` (``tests/integration/state_contract/`` runs the same cases on both):
- keys: ``<prefix>:<kind>:{<entity>}``, pseudonymised with a key secret (``entity_key``);
- stored form: the same fence, orjson blob and snapshot chunk bytes (``pack``/``unpack``,
  ``save_fields``, ``read_stored``), so loaded states and snapshots have exactly the types Redis
  would give back;
- writes: compare-and-set on the fence read at load, per entity; the others in the batch are
  written, and ``StateConflict`` is raised after, as the Redis pipeline does;
- expiry: each save of an entity (successful or not, if the key exists) sets its expiry to its
  kind's retention from the time of the save, like the PEXPIRE that follows each script call;
  retention 0 or missing keeps it forever. An expired entity loads as new, and a writer holding
  its old fence then loses the compare-and-set (the fence it read is gone), as on Redis.
Single-threaded asyncio: a save runs without awaiting, so it is atomic like a Lua script.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from stream.core.fencing import Fenced
from stream.state.entities import (
    entity_key,
    fence_of,
    read_stored,
    save_fields,
    settle,
    unpack,
)


def wall_clock_ms() -> float:
    return time.time() * 1000


class MemoryState:
    """Implements ``stream.types.EntityStore`` in process."""

    def __init__(
        self,
        prefix: str = "fs",
        key_secret: bytes | None = None,
        retention_ms: dict[str, int] | None = None,
        clock_ms: Callable[[], float] = wall_clock_ms,
        store: dict[str, tuple[bytes, bytes, float | None, dict[bytes, bytes]]] | None = None,
    ):
        """``store``: another ``MemoryState``'s ``data`` to share it, like two clients of one server."""
        self.prefix = prefix
        self._secret = key_secret
        self.retention_ms = retention_ms or {}
        self._clock = clock_ms
        self.data: dict[str, tuple[bytes, bytes, float | None, dict[bytes, bytes]]] = {} if store is None else store
        # key -> (fence, blob, expires at ms, the other fields: snapshot index and chunks)

    def key(self, kind: str, entity: str) -> str:
        return entity_key(self.prefix, kind, entity, self._secret)

    def _live(self, key: str) -> tuple[bytes, bytes, float | None, dict[bytes, bytes]] | None:
        item = self.data.get(key)
        if item is not None and item[2] is not None and item[2] <= self._clock():
            del self.data[key]
            return None
        return item

    async def load(self, kind: str, ids: Iterable[str], decode: Callable[[Any], Any]) -> dict[str, Fenced[Any]]:
        out = {}
        for i in dict.fromkeys(ids):
            item = self._live(self.key(kind, i))
            out[i] = unpack(item[0], item[1], decode, item[3].get(b"ix")) if item else unpack(None, None, decode)
        return out

    async def load_snapshots(self, kind: str, wanted: dict[str, list[int]]) -> dict[str, dict]:
        out = {}
        for i, offsets in wanted.items():
            item = self._live(self.key(kind, i))
            out[i] = read_stored(item[3] if item else {}, offsets)
        return out

    async def save(self, kind: str, entities: dict[str, Fenced[Any]], encode: Callable[[Any], Any]) -> None:
        dirty = [(i, e) for i, e in entities.items() if e.dirty]
        if not dirty:
            return
        ttl = self.retention_ms.get(kind, 0)
        written, indexes = [], []
        for i, e in dirty:
            key = self.key(kind, i)
            item = self._live(key)
            expires = self._clock() + ttl if ttl else (item[2] if item else None)  # HSET keeps a TTL
            if (item[0].decode() if item else "") != e.loaded_fence:
                if item is not None and ttl:
                    self.data[key] = (item[0], item[1], expires, item[3])
                written.append(False)
                indexes.append(b"")
                continue
            blob, ix, chunks = save_fields(e, encode)  # on the index loaded with the fence, as on Redis
            fields = dict(item[3]) if item else {}
            fields[b"ix"] = ix
            fields.update(zip(chunks[::2], chunks[1::2]))
            self.data[key] = (fence_of(e).encode(), blob, expires, fields)
            written.append(True)
            indexes.append(ix)
        settle(kind, dirty, written, self._secret, indexes)

    # --- looking inside (tests, backtest summaries) ---------------------------
    def live_keys(self) -> list[str]:
        return [k for k in list(self.data) if self._live(k) is not None]

    def pttl(self, key: str) -> int:
        """As Redis PTTL: ms left, -1 without expiry, -2 when absent."""
        item = self._live(key)
        if item is None:
            return -2
        return -1 if item[2] is None else max(0, int(item[2] - self._clock()))

    def raw(self, key: str) -> tuple[bytes, bytes] | None:
        """(fence, blob) as stored, like ``HMGET key fence blob``."""
        item = self._live(key)
        return (item[0], item[1]) if item else None
