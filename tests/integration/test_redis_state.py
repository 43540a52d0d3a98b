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


def test_redis_keeps_the_snapshot_fields_the_in_process_backend_keeps(backend):
    """The client computes each save's snapshot index from the one it loaded with the fence
    (``entities.save_fields``) and ``fenced_set.lua`` only compares and sets: random sequences of
    batches (new records, committed offsets or none, partition moves, redeliveries only) leave the
    same hash on Redis (server and cluster) as in the in-process backend, field for field."""
    import random

    from stream.state.memory import MemoryState

    rng = random.Random(14)

    async def go(red):
        mem, saves = MemoryState(backend.prefix), 0
        for run_ in range(12):
            eid, nxt, part = f"ix{run_}", 0, 0
            for _batch in range(25):
                n = rng.choice([0, 1, 1, 3, 8])
                if rng.random() < 0.1:
                    part = 1 - part
                committed = rng.choice([None, max(0, nxt - rng.randint(0, 30))])
                redo = list(range(max(0, nxt - 3), nxt)) if rng.random() < 0.2 else []
                outs = []
                for st in (red, mem):
                    ents = await st.load("acct", [eid], _fresh)
                    e = ents[eid]
                    wanted = fencing.redelivered(
                        ents, [eid] * len(redo), [SourceRecord("t", part, o, None, None) for o in redo]
                    )
                    if wanted:
                        e.snapshots.update((await st.load_snapshots("acct", wanted))[eid])
                    got = []
                    for off in [*redo, *range(nxt, nxt + n)]:
                        try:
                            got.append(fencing.apply(e, part, off, _appending(off), committed))
                        except fencing.ReplayGap:
                            got.append("gap")
                    await st.save("acct", ents, lambda s: s)
                    outs.append(got)
                assert outs[0] == outs[1]
                nxt += n + rng.randint(0, 3)
                key = red.key("acct", eid)
                want = {}
                if key in mem.data:  # not before the first batch with a new record
                    fence, blob, _expires, fields = mem.data[key]
                    want = {**fields, b"fence": fence, b"blob": blob}
                assert backend.sync.hgetall(key) == want, (run_, _batch)
                saves += bool(want)
        return saves

    assert run(_with_state(backend, go)) > 200


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
