"""The Redis state backend against a real server and a real 3-node Redis Cluster: windows,
fencing, compare-and-set, pseudonymous keys."""
import asyncio
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from stream.core import fencing
from stream.core.features import AccountState
from stream.core.windows import RECORD_SIZE, pack_tick, unpack
from stream.state.redis_store import OUT_OF_ORDER, RedisState, StateConflict


def run(coro):
    return asyncio.run(coro)


@dataclass
class Backend:
    url: str
    cluster: bool
    sync: object          # a plain client for looking at the raw keys
    prefix: str           # this test's own key prefix (the server may be shared: never flushed)

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


def ticks(symbol, partition, offsets):
    return [(symbol, pack_tick(partition, o, 1_700_000_000_000 + o, 100.0 + o), partition, o, 1_700_000_000_000 + o)
            for o in offsets]


def test_window_fills_then_slides(backend):
    async def go(st):
        return await st.append_ticks(ticks("SPX", 0, range(6)), 4, 8)
    bufs = run(_with_state(backend, go))
    assert [len(b) // RECORD_SIZE for b in bufs] == [1, 2, 3, 4, 4, 4]
    assert list(unpack(bufs[-1])["offset"]) == [2, 3, 4, 5]


def test_redelivered_tick_gets_its_original_window_and_changes_nothing(backend):
    async def go(st):
        await st.append_ticks(ticks("SPX", 1, range(10)), 3, 20)
        before = backend.sync.get(f"{backend.prefix}:win:{{SPX}}")
        again = await st.append_ticks(ticks("SPX", 1, [4, 5]), 3, 20)
        return before, again
    before, again = run(_with_state(backend, go))
    assert backend.sync.get(f"{backend.prefix}:win:{{SPX}}") == before
    assert list(unpack(again[0])["offset"]) == [2, 3, 4]
    assert list(unpack(again[1])["offset"]) == [3, 4, 5]


def test_history_is_trimmed_and_a_too_old_redelivery_is_reported(backend):
    async def go(st):
        await st.append_ticks(ticks("X", 0, range(50)), 3, 5)
        return await st.append_ticks(ticks("X", 0, [0, 49]), 3, 5)
    old, newest = run(_with_state(backend, go))
    assert backend.sync.strlen(f"{backend.prefix}:win:{{X}}") // RECORD_SIZE <= 10     # keep=5, trimmed at 2*keep
    assert old is None
    assert list(unpack(newest)["offset"]) == [47, 48, 49]


def test_partition_move_is_not_mistaken_for_redelivery(backend):
    async def go(st):
        await st.append_ticks(ticks("X", 0, [100, 101]), 3, 10)
        moved = [("X", pack_tick(2, 7, 1_800_000_000_000, 1.0), 2, 7, 1_800_000_000_000)]
        return await st.append_ticks(moved, 3, 10)
    [buf] = run(_with_state(backend, go))
    assert list(unpack(buf)["offset"]) == [100, 101, 7]


def test_out_of_order_tick_is_refused_not_appended(backend):
    async def go(st):
        await st.append_ticks(ticks("X", 0, [10, 11]), 3, 10)
        late = [("X", pack_tick(0, 12, 5, 99.0), 0, 12, 5)]
        return await st.append_ticks(late, 3, 10)
    assert run(_with_state(backend, go)) == [OUT_OF_ORDER]
    assert list(unpack(backend.sync.get(f"{backend.prefix}:win:{{X}}"))["offset"]) == [10, 11]


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
        await st.append_ticks(ticks("SPX", 0, [1]), 3, 5)
        return await st.load("acct", ["DE89370400440532013000"], AccountState.from_dict)
    back = run(_with_state(backend, go, key_secret=b"s3cret"))
    assert back["DE89370400440532013000"].state.n == 1
    keys = [k.decode() for k in backend.keys(f"{backend.prefix}:*")]
    assert len(keys) == 2 and not any("DE8937" in k or "SPX" in k for k in keys)


def test_many_keys_in_one_batch_keep_per_key_order(backend):
    """On a cluster the script calls fan out per key: each key's ticks must still apply in order."""
    items = [it for o in range(30) for sym in ("A", "B", "C", "D", "E") for it in ticks(sym, 0, [o])]

    async def go(st):
        return await st.append_ticks(items, 4, 50)
    bufs = run(_with_state(backend, go))
    for (sym, _, _, offset, _), buf in zip(items, bufs):
        assert list(unpack(buf)["offset"]) == list(range(max(0, offset - 3), offset + 1)), sym
