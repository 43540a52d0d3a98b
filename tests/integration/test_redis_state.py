"""The Redis state backend against a real server and a real 3-node Redis Cluster: fencing,
compare-and-set, pseudonymous keys, many keys in one batch."""

import asyncio
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from stream.core import fencing
from stream.core.features import AccountState
from stream.core.records import SourceRecord
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
        return back, await st.load_snapshots("acct", {"a": [5, 9], "b": [1]})

    back, snaps = run(_with_state(backend, go))
    a = back["a"]
    assert (a.state.n, a.partition, a.offset, a.snap_upto) == (2, 0, 9, 9)
    assert snaps == {"a": {5: [0.0], 9: [1.0]}, "b": {}}
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
            return again["a"], await st.load_snapshots("acct", {"a": [4]})
        finally:
            await client.aclose()

    a, snaps = run(go())
    assert (a.state, a.loaded_fence, snaps) == ({"seen": [4]}, "0:4", {"a": {4: 4}})


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


def test_the_save_script_keeps_snapshot_chunks_as_next_index_does(stack, redis_prefix, redis_client):
    """``fenced_set.lua`` and ``stream.state.entities.next_index`` are one rule written twice (Redis
    and the in-process backend): random sequences of saves leave the same fields."""
    import random

    from stream.state.entities import REPLACE, chunk_field, log_entries, next_index
    from stream.state.redis_store import FENCED_SET

    rng = random.Random(14)
    sha = redis_client.script_load(FENCED_SET)
    for run_ in range(30):
        key = f"{redis_prefix}:acct:{{lua{run_}}}"
        fields: dict = {}
        fence, nxt = "", 0
        for _save in range(20):
            offs = list(range(nxt, nxt + rng.choice([0, 1, 3, 8])))
            nxt += len(offs) + rng.randint(0, 3)
            new = log_entries({o: {"o": o, "t": "é" * rng.randint(0, 3)} for o in offs})
            keep = rng.choice([REPLACE, "-1", str(max(0, nxt - rng.randint(0, 30)))])
            max_count = rng.choice([0, 0, rng.randint(1, 20)])
            first, last = (offs[0], offs[-1]) if offs else (0, 0)
            args = [keep, max_count, new, len(offs), first, last]
            assert redis_client.evalsha(sha, 1, key, fence, f"0:{nxt}", b"{}", *args) == 1
            fence = f"0:{nxt}"
            fields[b"ix"], slot, emptied = next_index(fields.get(b"ix"), keep, max_count, len(offs), first, last)
            for gone in emptied:
                fields[chunk_field(gone)] = b""
            if slot is not None:
                fields[chunk_field(slot)] = new
            got = redis_client.hgetall(key)
            assert {k: v for k, v in got.items() if k not in (b"fence", b"blob")} == fields, (run_, _save)


def test_a_form_2_entity_in_redis_loads_answers_its_redelivery_and_moves_to_the_log(backend):
    """States written before the snapshot log (stored form 2: snapshots as JSON text in the blob)."""
    import orjson

    key = f"{backend.prefix}:acct:{{old}}"
    snaps = {"5": orjson.dumps([0.0]).decode(), "9": orjson.dumps([1.0]).decode()}
    backend.sync.hset(
        key, mapping={"fence": b"0:9", "blob": orjson.dumps({"f": 2, "s": AccountState(n=2).to_dict(), "snap": snaps})}
    )

    def step(st):
        return AccountState(n=st.n + 1), [float(st.n)]

    async def go(st):
        ents = await st.load("acct", ["old"], AccountState.from_dict)
        assert (
            fencing.redelivered(ents, ["old"], [SourceRecord("t", 0, 9, None, None)]) == {}
        )  # in the blob: nothing to fetch
        redone = fencing.apply(ents["old"], 0, 9, step)
        fencing.apply(ents["old"], 0, 10, step, committed=9)
        await st.save("acct", ents, AccountState.to_dict)
        back = await st.load("acct", ["old"], AccountState.from_dict)
        return redone, back["old"], await st.load_snapshots("acct", {"old": [5, 9, 10]})

    redone, back, stored = run(_with_state(backend, go))
    assert redone == [1.0] and back.state.n == 3 and back.snap_upto == 10
    assert stored == {"old": {9: [1.0], 10: [2.0]}}
    assert orjson.loads(backend.sync.hget(key, "blob"))["f"] == 3
