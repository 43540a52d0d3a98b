"""The Redis state backend against the real server: windows, fencing, compare-and-set."""
import asyncio

import pytest
import redis.asyncio as aioredis

from stream.core import fencing
from stream.core.features import AccountState
from stream.core.windows import RECORD_SIZE, pack_tick, unpack
from stream.state.redis_store import OUT_OF_ORDER, RedisState, StateConflict


def run(coro):
    return asyncio.run(coro)


async def _with_state(stack, fn):
    client = aioredis.from_url(stack.redis_url.get_secret_value())
    try:
        return await fn(RedisState(client, "t"))
    finally:
        await client.aclose()


def ticks(symbol, partition, offsets):
    return [(symbol, pack_tick(partition, o, 1_700_000_000_000 + o, 100.0 + o), partition, o, 1_700_000_000_000 + o)
            for o in offsets]


def test_window_fills_then_slides(stack, redis_client):
    async def go(st):
        return await st.append_ticks(ticks("SPX", 0, range(6)), 4, 8)
    bufs = run(_with_state(stack, go))
    assert [len(b) // RECORD_SIZE for b in bufs] == [1, 2, 3, 4, 4, 4]
    assert list(unpack(bufs[-1])["offset"]) == [2, 3, 4, 5]


def test_redelivered_tick_gets_its_original_window_and_changes_nothing(stack, redis_client):
    async def go(st):
        await st.append_ticks(ticks("SPX", 1, range(10)), 3, 20)
        before = redis_client.get("t:win:{SPX}")
        again = await st.append_ticks(ticks("SPX", 1, [4, 5]), 3, 20)
        return before, again
    before, again = run(_with_state(stack, go))
    assert redis_client.get("t:win:{SPX}") == before
    assert list(unpack(again[0])["offset"]) == [2, 3, 4]
    assert list(unpack(again[1])["offset"]) == [3, 4, 5]


def test_history_is_trimmed_and_a_too_old_redelivery_is_reported(stack, redis_client):
    async def go(st):
        await st.append_ticks(ticks("X", 0, range(50)), 3, 5)
        return await st.append_ticks(ticks("X", 0, [0, 49]), 3, 5)
    old, newest = run(_with_state(stack, go))
    assert redis_client.strlen("t:win:{X}") // RECORD_SIZE <= 10     # keep=5, trimmed at 2*keep
    assert old is None
    assert list(unpack(newest)["offset"]) == [47, 48, 49]


def test_partition_move_is_not_mistaken_for_redelivery(stack, redis_client):
    async def go(st):
        await st.append_ticks(ticks("X", 0, [100, 101]), 3, 10)
        moved = [("X", pack_tick(2, 7, 1_800_000_000_000, 1.0), 2, 7, 1_800_000_000_000)]
        return await st.append_ticks(moved, 3, 10)
    [buf] = run(_with_state(stack, go))
    assert list(unpack(buf)["offset"]) == [100, 101, 7]


def test_out_of_order_tick_is_refused_not_appended(stack, redis_client):
    async def go(st):
        await st.append_ticks(ticks("X", 0, [10, 11]), 3, 10)
        late = [("X", pack_tick(0, 12, 5, 99.0), 0, 12, 5)]
        return await st.append_ticks(late, 3, 10)
    assert run(_with_state(stack, go)) == [OUT_OF_ORDER]
    assert list(unpack(redis_client.get("t:win:{X}"))["offset"]) == [10, 11]


def test_entities_round_trip_with_fence_and_snapshots(stack, redis_client):
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
    back = run(_with_state(stack, go))
    a = back["a"]
    assert (a.state.n, a.partition, a.offset) == (2, 0, 9)
    assert a.snapshots == {5: [0.0], 9: [1.0]}
    assert back["b"].state.n == 0 and not back["b"].dirty
    assert redis_client.hget("t:acct:{a}", "fence") == b"0:9"


def test_concurrent_writer_is_detected(stack, redis_client):
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
    run(_with_state(stack, go))


def test_key_secret_pseudonymises_ids(stack, redis_client):
    def step(st):
        return AccountState(n=st.n + 1), []

    async def go():
        client = aioredis.from_url(stack.redis_url.get_secret_value())
        st = RedisState(client, "t", key_secret=b"s3cret")
        try:
            ents = await st.load("acct", ["DE89370400440532013000"], AccountState.from_dict)
            fencing.apply(ents["DE89370400440532013000"], 0, 1, step)
            await st.save("acct", ents, AccountState.to_dict)
            await st.append_ticks(ticks("SPX", 0, [1]), 3, 5)
            back = await st.load("acct", ["DE89370400440532013000"], AccountState.from_dict)
        finally:
            await client.aclose()
        return back
    back = run(go())
    assert back["DE89370400440532013000"].state.n == 1
    keys = [k.decode() for k in redis_client.keys("t:*")]
    assert len(keys) == 2 and not any("DE8937" in k or "SPX" in k for k in keys)
