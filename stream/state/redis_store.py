"""Redis state backend: fenced entity states.

Key layout (``P`` = settings.redis_key_prefix; the ``{...}`` hash tag keeps every key of one
entity in one Redis Cluster slot, so each script touches a single slot)::

    P:bar:{<symbol>}     hash    fence = "<partition>:<offset>", blob = orjson time bars,
                                 ix + c<n> = output snapshots in chunks (stream.state.entities)
    P:acct:{<account>}   hash    fence = "<partition>:<offset>", blob = orjson state, ix + c<n>
    P:user:{<user>}      hash    same layout, for product profiles

Every write sets the key's expiry to its kind's retention (``FINSTREAM_STATE_RETENTION_*_S``), so
an idle entity disappears on its own and memory is bounded by the entities active within it.

With ``FINSTREAM_REDIS_KEY_SECRET`` set, ``<symbol>``, ``<account>`` and ``<user>`` are replaced by
the first 32 hex digits of HMAC-SHA256(secret, id).

Every batch is one round trip per direction; no per-event awaits (``asyncio.gather`` over many
commands exhausts the connection pool). On one server a load is a single read-only script call
over all the batch's keys (``fenced_get.lua``: one reply to parse instead of one per key, sent raw
like the saves), and a
save one round trip of raw ``EVALSHA`` + ``PEXPIRE`` per key (the script compares the fence and
writes the state, the key's small snapshot index as the client computed it from the one it loaded,
and the batch's new output snapshots as a chunk of their own: snapshots are neither loaded nor
sent back, nor copied or parsed by the script), written in the Redis protocol here
and sent on a pooled connection (redis-py's script objects add a ``SCRIPT EXISTS`` round trip to
every pipeline, and its pipelines cost more Python per command than the rest of the save; a
missing script is loaded on ``NOSCRIPT`` and the refused calls, which wrote nothing, are sent again). Redis Cluster refuses multi-slot scripts
and scripts inside a pipeline (redis-py blocks EVALSHA in cluster pipelines), so there a load is
a pipeline of ``HMGET`` and the script calls run per key, in order within a key and concurrently
across keys, at most ``CLUSTER_CONCURRENCY`` at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from stream.core.fencing import Fenced
from stream.state.entities import (
    StateConflict,
    entity_key,
    fence_of,
    read_stored,
    save_fields,
    settle,
    unpack,
)

__all__ = ["RedisState", "StateConflict", "connect", "connect_state"]

_HERE = Path(__file__).parent
FENCED_SET = (_HERE / "fenced_set.lua").read_text()
FENCED_GET = (_HERE / "fenced_get.lua").read_text()


def _bulks(args) -> bytes:
    """Arguments as Redis protocol bulk strings, as redis-py's encoder writes them: str as UTF-8,
    int in decimal, bytes as they are."""
    parts = []
    for a in args:
        b = a if type(a) is bytes else a.encode() if isinstance(a, str) else b"%d" % a
        parts += (b"$%d\r\n" % len(b), b, b"\r\n")
    return b"".join(parts)


def resp_command(*args: str | bytes | int) -> bytes:
    """One command in the Redis protocol (an array of bulk strings)."""
    return b"*%d\r\n" % len(args) + _bulks(args)


def script_calls(sha: str, calls: list[tuple[str, list]], ttl_ms: int) -> bytes:
    """``EVALSHA sha 1 key *args`` (+ ``PEXPIRE key ttl_ms``) per call, in the Redis protocol: what
    ``resp_command`` writes for each, with the parts every call shares written once (this runs
    per entity of every batch)."""
    heads: dict[int, bytes] = {}
    expire = _bulks((ttl_ms,))
    packed = []
    for key, args in calls:
        head = heads.get(len(args))
        if head is None:
            head = heads[len(args)] = b"*%d\r\n" % (4 + len(args)) + _bulks(("EVALSHA", sha, 1))
        k = _bulks((key,))
        packed += (head, k, _bulks(args))
        if ttl_ms:
            packed += (b"*3\r\n$7\r\nPEXPIRE\r\n", k, expire)
    return b"".join(packed)


CLUSTER_CONCURRENCY = 32
# Longest a state round trip may take before it counts as an outage (stream.runtime retries it);
# redis-py's own default socket timeout, applied once per round trip instead of once per reply.
ROUND_TRIP_TIMEOUT_S = 5.0


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


def connect_state(settings):
    """The client ``RedisState`` runs on: ``connect`` without redis-py's per-reply read timeout on
    one server. redis-py arms an ``asyncio.timeout`` for every reply it reads, which cost about
    5 µs of CPU per command (half of a pipelined command's client cost); ``RedisState`` bounds each
    round trip as a whole instead (``ROUND_TRIP_TIMEOUT_S``), so a hung server is still an outage.
    A cluster client keeps its per-reply timeouts (its script calls are not one round trip)."""
    return connect(settings) if settings.redis_cluster else connect(settings, socket_timeout=None)


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
        self._fenced_get = client.register_script(FENCED_GET)
        self._cluster = type(client).__name__ == "RedisCluster"

    async def _round_trip(self, commands: bytes, replies: int) -> list:
        """Send commands already in the Redis protocol on one pooled connection and read their
        ``replies`` in order, an error reply as its exception (what a pipeline returns with
        ``raise_on_error=False``). Used for the per-entity saves instead of a redis-py pipeline,
        whose per-command Python (queueing, packing, reply dispatch) cost ~17 µs of CPU per entity
        against ~7 µs here (2.2 kB blobs, 375 entities a batch). Any other failure leaves the
        connection closed (a half-read reply must not be read by the next user) and propagates:
        ``stream.runtime`` retries the batch."""
        pool = self.r.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(commands)
            out: list = []
            for _ in range(replies):
                try:
                    out.append(await conn.read_response())
                except ResponseError as exc:
                    out.append(exc)
            return out
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)

    async def _evalsha_pipeline(self, script, calls: list[tuple[str, list]], ttl_ms: int) -> list:
        """One round trip of raw EVALSHA (+ PEXPIRE) per call; calls refused with NOSCRIPT (the
        server lost its script cache: they ran nothing) are sent again once the script is loaded."""
        pending = list(range(len(calls)))
        results: list = [None] * len(calls)
        for _attempt in range(2):
            packed = script_calls(script.sha, [calls[i] for i in pending], ttl_ms)
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                replies = await self._round_trip(packed, len(pending) * (2 if ttl_ms else 1))
            step = 2 if ttl_ms else 1
            refused = []
            for i, reply in zip(pending, replies[::step]):
                if isinstance(reply, NoScriptError):
                    refused.append(i)
                elif isinstance(reply, Exception):
                    raise reply
                results[i] = reply
            for reply in replies[1::2] if ttl_ms else ():
                if isinstance(reply, Exception):
                    raise reply
            if not refused:
                return results
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                script.sha = await self.r.script_load(script.script)
            pending = refused
        raise NoScriptError(f"script {script.sha} still unknown to the server after SCRIPT LOAD")

    async def _evalsha(self, script, keys: list[str]):
        """``script`` over ``keys``: one raw ``EVALSHA`` on a pooled connection (``_round_trip``).
        redis-py's script call encodes each key through its encoder and wraps the command in its
        retry and reply dispatch: a fixed cost per batch that the paced load's batches of ~40 events
        pay per few events. A missing script is loaded on ``NOSCRIPT`` and the call sent again."""
        for _attempt in range(2):
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                (reply,) = await self._round_trip(resp_command("EVALSHA", script.sha, len(keys), *keys), 1)
            if not isinstance(reply, NoScriptError):
                break
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                script.sha = await self.r.script_load(script.script)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _run_scripts(self, script, calls: list[tuple[str, list]], ttl_ms: int = 0) -> list:
        """Results of ``script(key, args)`` for each call, in call order, in as few round trips as
        the deployment allows (one pipeline; on a cluster, one chain per key). With ``ttl_ms`` each
        key's expiry is then set by a PEXPIRE of its own, not inside the script: a script with two
        writes is logged to the AOF as MULTI/EXEC, which Redis 7.0 refuses to load (NOPERM) when the
        default user is off, as on the secured stack, and the state would be lost on restart."""
        if not self._cluster:
            return await self._evalsha_pipeline(script, calls, ttl_ms)
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
        keys = [self.key(kind, i) for i in ids]
        if self._cluster:
            pipe = self.r.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, "fence", "blob", "ix")
            rows = await pipe.execute()
        else:
            rows = await self._evalsha(self._fenced_get, keys)
        return {i: unpack(fence, blob, decode, ix) for i, (fence, blob, ix) in zip(ids, rows)}

    async def load_snapshots(self, kind: str, wanted: dict[str, list[int]]) -> dict[str, dict]:
        """The stored output snapshots at the given offsets, by entity id (those still stored):
        one pipelined ``HGETALL`` of the entities concerned. Only a batch with redelivered records
        pays it."""
        ids = list(wanted)
        if not ids:
            return {}
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.key(kind, i))
        async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
            found = await pipe.execute()
        return {i: read_stored(fields, wanted[i]) for i, fields in zip(ids, found)}

    async def save(self, kind: str, entities: dict[str, Fenced], encode) -> None:
        dirty = [(i, e) for i, e in entities.items() if e.dirty]
        if not dirty:
            return
        calls, indexes = [], []
        for i, e in dirty:
            blob, ix, chunks = save_fields(e, encode)
            calls.append((self.key(kind, i), [e.loaded_fence, fence_of(e), blob, ix, *chunks]))
            indexes.append(ix)
        results = await self._run_scripts(self._fenced_set, calls, self.retention_ms.get(kind, 0))
        settle(kind, dirty, [bool(r) for r in results], self._secret, indexes)
