"""The Redis state backend against a real server and a real 3-node Redis Cluster: fencing,
compare-and-set, pseudonymous keys, many keys in one batch."""

import asyncio
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from stream.core import fencing
from stream.core.features import AccountState
from stream.state.redis_store import RedisState, StateConflict


def run(coro):
    return asyncio.run(coro)


@dataclass
class Backend:
    url: str
    cluster: bool
    sync: object  # a plain client for looking at the raw keys
    prefix: str  # this test's own key prefix (the server may be shared: never flushed)

    def keys(self, pattern: str) -> list[bytes]:
        if self.cluster:
            import redis

            return self.sync.keys(pattern, target_nodes=redis.RedisCluster.PRIMARIES)
        return self.sync.keys(pattern)

    def client(self):
        if self.cluster:
            from redis.asyncio.cluster import RedisCluster

            return RedisCluster.from_url(self.url)
        return aioredis.from_url(self.url)


@pytest.fixture(params=["server", "cluster"])
def backend(request, stack, redis_prefix):
    import redis

    if request.param == "server":
        url = stack.redis_url.get_secret_value()
        sync = redis.Redis.from_url(url)
    else:
        url = request.getfixturevalue("redis_cluster")
        sync = redis.RedisCluster.from_url(url)
    b = Backend(url, request.param == "cluster", sync, redis_prefix)
    yield b
    for key in b.keys(f"{redis_prefix}:*"):
        sync.delete(key)
    sync.close()


async def _with_state(backend, fn, **kw):
    client = backend.client()
    try:
        return await fn(RedisState(client, backend.prefix, **kw))
    finally:
        await client.aclose()


def test_entities_round_trip_with_fence_and_snapshots(backend):
    def step(st):
        nxt = AccountState(n=st.n + 1)
        return nxt, [float(st.n)]

    async def go(st):
        ents = await st.load("acct", ["a", "b"], AccountState.from_dict)
        fencing.apply(ents["a"], 0, 5, step)
        fencing.apply(ents["a"], 0, 9, step)
        await st.save("acct", ents, AccountState.to_dict)
        back = await st.load("acct", ["a", "b"], AccountState.from_dict)
        return back

    back = run(_with_state(backend, go))
    a = back["a"]
    assert (a.state.n, a.partition, a.offset) == (2, 0, 9)
    assert a.snapshots == {5: [0.0], 9: [1.0]}
    assert back["b"].state.n == 0 and not back["b"].dirty
    assert backend.sync.hget(f"{backend.prefix}:acct:{{a}}", "fence") == b"0:9"


def test_concurrent_writer_is_detected(backend):
    def step(st):
        return AccountState(n=st.n + 1), []

    async def go(st):
        mine = await st.load("acct", ["a"], AccountState.from_dict)
        theirs = await st.load("acct", ["a"], AccountState.from_dict)
        fencing.apply(theirs["a"], 0, 1, step)
        await st.save("acct", theirs, AccountState.to_dict)
        fencing.apply(mine["a"], 0, 1, step)
        with pytest.raises(StateConflict):
            await st.save("acct", mine, AccountState.to_dict)

    run(_with_state(backend, go))


def test_key_secret_pseudonymises_ids(backend):
    def step(st):
        return AccountState(n=st.n + 1), []

    async def go(st):
        ents = await st.load("acct", ["DE89370400440532013000"], AccountState.from_dict)
        fencing.apply(ents["DE89370400440532013000"], 0, 1, step)
        await st.save("acct", ents, AccountState.to_dict)
        return await st.load("acct", ["DE89370400440532013000"], AccountState.from_dict)

    back = run(_with_state(backend, go, key_secret=b"s3cret"))
    assert back["DE89370400440532013000"].state.n == 1
    keys = [k.decode() for k in backend.keys(f"{backend.prefix}:*")]
    assert len(keys) == 1 and not any("DE8937" in k for k in keys)


def test_many_keys_in_one_batch(backend):
    """On a cluster the script calls fan out per key, 32 at a time: every entity of a batch wider
    than that must still be written once, with its own fence."""
    ids = [f"acct-{i}" for i in range(150)]

    def step(st):
        return AccountState(n=st.n + 1), []

    async def go(st):
        ents = await st.load("acct", ids, AccountState.from_dict)
        for j, i in enumerate(ids):
            fencing.apply(ents[i], j % 4, 100 + j, step)
        await st.save("acct", ents, AccountState.to_dict)
        return await st.load("acct", ids, AccountState.from_dict)

    back = run(_with_state(backend, go))
    assert [(back[i].state.n, back[i].partition, back[i].offset) for i in ids] == [
        (1, j % 4, 100 + j) for j in range(len(ids))
    ]


def _appending(tag):
    def step(st):
        return {"seen": [*st["seen"], tag]}, tag

    return step


def _fresh(d):
    return d if d is not None else {"seen": []}


def test_state_client_bounds_each_round_trip_so_a_hung_server_is_an_outage(
    stack, redis_prefix, redis_client, monkeypatch
):
    """``connect_state`` drops redis-py's per-reply timeout; ``RedisState`` bounds the round trip
    itself: a server that stops answering (CLIENT PAUSE) is a timeout the outage policy retries,
    and the same state object works again once it answers."""
    from stream import runtime
    from stream.state import redis_store

    monkeypatch.setattr(redis_store, "ROUND_TRIP_TIMEOUT_S", 0.3)

    async def go():
        client = redis_store.connect_state(stack)
        assert client.connection_pool.connection_kwargs["socket_timeout"] is None
        st = RedisState(client, redis_prefix)
        try:
            ents = await st.load("acct", ["a"], _fresh)
            fencing.apply(ents["a"], 0, 4, _appending(4))
            await st.save("acct", ents, lambda s: s)
            redis_client.execute_command("CLIENT", "PAUSE", 2000, "ALL")
            with pytest.raises(TimeoutError) as err:
                await st.load("acct", ["a"], _fresh)
            assert runtime.is_outage(err.value)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while True:  # answering again once the pause is over
                try:
                    again = await st.load("acct", ["a"], _fresh)
                    break
                except TimeoutError:
                    assert loop.time() < deadline
            return again["a"]
        finally:
            await client.aclose()

    a = run(go())
    assert (a.state, a.loaded_fence, a.snapshots) == ({"seen": [4]}, "0:4", {4: 4})


def test_a_flushed_script_cache_is_reloaded_and_the_refused_writes_sent_again(stack, redis_prefix, redis_client):
    """On one server, saves send raw EVALSHA (no SCRIPT EXISTS round trip per batch) and loads one
    read script: after SCRIPT FLUSH the server refuses them with NOSCRIPT (nothing written), the
    store loads the script and sends the refused calls again."""
    from stream.state.redis_store import connect_state

    async def go():
        client = connect_state(stack)
        st = RedisState(client, redis_prefix)
        try:
            ents = await st.load("acct", ["a", "b"], _fresh)
            for i in ("a", "b"):
                fencing.apply(ents[i], 1, 7, _appending(7))
            await st.save("acct", ents, lambda s: s)
            redis_client.script_flush()
            for i in ("a", "b"):
                fencing.apply(ents[i], 1, 8, _appending(8))
            await st.save("acct", ents, lambda s: s)
            redis_client.script_flush()
            return await st.load("acct", ["a", "b"], _fresh)
        finally:
            await client.aclose()

    got = run(go())
    for i in ("a", "b"):
        assert (got[i].state, got[i].loaded_fence) == ({"seen": [7, 8]}, "1:8")
