"""Redis state backend: fenced entity states.

Key layout (``P`` = settings.redis_key_prefix; the ``{...}`` hash tag keeps every key of one
entity in one Redis Cluster slot, so each script touches a single slot)::

    P:bar:{<symbol>}     hash    fence = "<partition>:<offset>", blob = orjson time bars + output snapshots
    P:acct:{<account>}   hash    fence = "<partition>:<offset>", blob = orjson state + output snapshots
    P:user:{<user>}      hash    same layout, for product profiles

Every write sets the key's expiry to its kind's retention (``FINSTREAM_STATE_RETENTION_*_S``), so
an idle entity disappears on its own and memory is bounded by the entities active within it.

With ``FINSTREAM_REDIS_KEY_SECRET`` set, ``<symbol>``, ``<account>`` and ``<user>`` are replaced by
the first 32 hex digits of HMAC-SHA256(secret, id).

Every batch is one pipelined round trip per direction; no per-event awaits (``asyncio.gather``
over many commands exhausts the connection pool). Redis Cluster refuses scripts inside a
pipeline (redis-py blocks EVALSHA in cluster pipelines), so there the script calls run per key,
in order within a key and concurrently across keys, at most ``CLUSTER_CONCURRENCY`` at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from stream.core.fencing import Fenced
from stream.state.entities import (
    StateConflict,
    entity_key,
    fence_of,
    pack,
    settle,
    unpack,
)

__all__ = ["RedisState", "StateConflict", "connect"]

_HERE = Path(__file__).parent
FENCED_SET = (_HERE / "fenced_set.lua").read_text()


CLUSTER_CONCURRENCY = 32


def connect(settings, *, sync: bool = False, **kw):
    """The one way the project opens Redis: URL (user, password, rediss:// for TLS), TLS files
    (``Settings.redis_client_options``) and cluster mode all come from the settings. ``sync=True``
    gives a blocking client (preflight, stack probes, tools); ``kw`` adds client options (timeouts)."""
    url = settings.redis_url.get_secret_value()
    opts = {**settings.redis_client_options(), **kw}
    if sync:
        import redis

        return redis.RedisCluster.from_url(url, **opts) if settings.redis_cluster else redis.Redis.from_url(url, **opts)
    if settings.redis_cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(url, **opts)
    return aioredis.from_url(url, **{"max_connections": 32, **opts})


class RedisState:
    """Implements ``stream.types.EntityStore`` (key layout and stored form shared with the
    in-process backend: ``stream.state.entities``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "fs",
        key_secret: bytes | None = None,
        retention_ms: dict[str, int] | None = None,
    ):
        self.r = client
        self.prefix = prefix
        self._secret = key_secret
        self.retention_ms = retention_ms or {}  # kind -> ms; missing or 0 = keep forever
        self._fenced_set = client.register_script(FENCED_SET)
        self._cluster = type(client).__name__ == "RedisCluster"

    async def _run_scripts(self, script, calls: list[tuple[str, list]], ttl_ms: int = 0) -> list:
        """Results of ``script(key, args)`` for each call, in call order, in as few round trips as
        the deployment allows (one pipeline; on a cluster, one chain per key). With ``ttl_ms`` each
        key's expiry is then set by a PEXPIRE of its own, not inside the script: a script with two
        writes is logged to the AOF as MULTI/EXEC, which Redis 7.0 refuses to load (NOPERM) when the
        default user is off, as on the secured stack, and the state would be lost on restart."""
        if not self._cluster:
            pipe = self.r.pipeline(transaction=False)
            for key, args in calls:
                await script(keys=[key], args=args, client=pipe)
                if ttl_ms:
                    pipe.pexpire(key, ttl_ms)
            results = list(await pipe.execute())
            return results[::2] if ttl_ms else results
        results: list = [None] * len(calls)
        by_key: dict[str, list[int]] = {}
        for i, (key, _) in enumerate(calls):
            by_key.setdefault(key, []).append(i)
        gate = asyncio.Semaphore(CLUSTER_CONCURRENCY)

        async def chain(indices: list[int]) -> None:
            async with gate:
                for i in indices:  # one key's calls stay in order: they are that key's history
                    key, args = calls[i]
                    results[i] = await script(keys=[key], args=args)
                    if ttl_ms:
                        await self.r.pexpire(key, ttl_ms)

        await asyncio.gather(*(chain(ix) for ix in by_key.values()))
        return results

    def key(self, kind: str, entity: str) -> str:
        return entity_key(self.prefix, kind, entity, self._secret)

    # --- entities --------------------------------------------------------
    async def load(self, kind: str, ids, decode) -> dict[str, Fenced]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hmget(self.key(kind, i), "fence", "blob")
        return {i: unpack(fence, blob, decode) for i, (fence, blob) in zip(ids, await pipe.execute())}

    async def save(self, kind: str, entities: dict[str, Fenced], encode) -> None:
        dirty = [(i, e) for i, e in entities.items() if e.dirty]
        if not dirty:
            return
        calls = [(self.key(kind, i), [e.loaded_fence, fence_of(e), pack(e, encode)]) for i, e in dirty]
        results = await self._run_scripts(self._fenced_set, calls, self.retention_ms.get(kind, 0))
        settle(kind, dirty, [bool(r) for r in results], self._secret)
