"""The backends the contract runs on (``Backend``: how to open one and look at what it stored) and
the fold steps the cases apply (pure functions of a state, as a job's are)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from stream.core import fencing
from stream.core.records import SourceRecord
from stream.state.redis_store import RedisState


def fresh(d):
    return d if d is not None else {"seen": []}


def keep(state):
    return state


def appending(tag):
    """A pure fold step: the state lists what it has seen; the output is a tuple (stored as a list)."""

    def step(st):
        return {"seen": [*st["seen"], tag]}, (tag, len(st["seen"]))

    return step


@dataclass
class Backend:
    name: str
    prefix: str
    open: Callable[..., object]  # open(key_secret=None, retention_ms=None) -> EntityStore
    stored_keys: Callable[[], list[str]]  # every key under this test's prefix
    pttl: Callable[[str], int]
    raw_fence: Callable[[str], bytes | None]
    closers: list = field(default_factory=list)


def redis_backend(name, url, cluster, prefix):
    """A ``Backend`` on a redis-server or a cluster at ``url``, and a plain client to look with."""
    import redis

    sync = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)

    def open_(**kw):
        if cluster:
            from redis.asyncio.cluster import RedisCluster

            client = RedisCluster.from_url(url)
        else:
            import redis.asyncio as aioredis

            client = aioredis.from_url(url)
        b.closers.append(client)
        return RedisState(client, prefix, **kw)

    def keys():
        kw = {"target_nodes": redis.RedisCluster.PRIMARIES} if cluster else {}
        return sorted(k.decode() for k in sync.keys(f"{prefix}:*", **kw))

    b = Backend(name, prefix, open_, keys, lambda k: sync.pttl(k), lambda k: sync.hget(k, "fence"))
    return b, sync


def run(backend, coro_fn):
    async def go():
        try:
            return await coro_fn()
        finally:
            for client in backend.closers:
                await client.aclose()
            backend.closers.clear()

    return asyncio.run(go())


async def replay(st, kind, ents, events, step):
    """What ``Job.fold`` does with redelivered records: fetch their snapshots, then apply."""
    wanted = fencing.redelivered(
        ents, [i for i, _, _ in events], [SourceRecord("t", p, o, None, None) for _, p, o in events]
    )
    for i, snaps in (await st.load_snapshots(kind, wanted)).items():
        ents[i].snapshots.update(snaps)
    return [fencing.apply(ents[i], p, off, step(off)) for i, p, off in events]
