"""The state contract: the same cases on every ``EntityStore`` backend, the in-process one
(``MemoryState``), a real redis-server (``RedisState``) and a real three-node Redis Cluster
(``RedisState`` on ``RedisCluster``). A backend that passes gives a job the same loads, the same
conflicts and the same stored bytes; docs/state.md states the contract in words."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from redis.crc import key_slot

from stream.core import fencing
from stream.core.pseudonyms import pseudonym
from stream.core.records import SourceRecord
from stream.state.entities import StateConflict, entity_key
from stream.state.memory import MemoryState
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


def _redis_backend(name, url, cluster, prefix):
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


@pytest.fixture(params=["memory", "server", "cluster"])
def backend(request):
    prefix = f"contract-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        store: dict = {}
        probe = MemoryState(prefix, store=store)
        yield Backend(
            "memory",
            prefix,
            lambda **kw: MemoryState(prefix, store=store, **kw),
            lambda: sorted(k for k in probe.live_keys() if k.startswith(prefix + ":")),
            probe.pttl,
            lambda k: (probe.raw(k) or (None,))[0],
        )
        return
    if request.param == "server":
        url, cluster = request.getfixturevalue("stack").redis_url.get_secret_value(), False
    else:
        url, cluster = request.getfixturevalue("redis_cluster"), True
    b, sync = _redis_backend(request.param, url, cluster, prefix)
    yield b
    for key in b.stored_keys():
        sync.delete(key)
    sync.close()


def run(backend, coro_fn):
    async def go():
        try:
            return await coro_fn()
        finally:
            for client in backend.closers:
                await client.aclose()
            backend.closers.clear()

    return asyncio.run(go())


def test_absent_entity_loads_fresh_and_writes_nothing(backend):
    async def go():
        st = backend.open()
        ents = await st.load("acct", ["nobody", "nobody", "none"], fresh)
        await st.save("acct", ents, keep)
        return ents

    ents = run(backend, go)
    assert list(ents) == ["nobody", "none"]  # one entity per distinct id
    e = ents["nobody"]
    assert (e.state, e.partition, e.offset, e.snapshots, e.dirty, e.loaded_fence) == (
        {"seen": []},
        -1,
        -1,
        {},
        False,
        "",
    )
    assert backend.stored_keys() == []


def test_round_trip_keeps_state_fence_and_snapshots_in_stored_form(backend):
    async def go():
        st = backend.open()
        ents = await st.load("acct", ["a"], fresh)
        for off in (5, 9):
            fencing.apply(ents["a"], 3, off, appending(off))
        await st.save("acct", ents, keep)
        assert not ents["a"].dirty and ents["a"].loaded_fence == "3:9"
        loaded = await backend.open().load("acct", ["a"], fresh)
        return loaded, await backend.open().load_snapshots("acct", {"a": [5, 7, 9]})

    loaded, snaps = run(backend, go)
    a = loaded["a"]
    assert (a.state, a.partition, a.offset, a.loaded_fence) == ({"seen": [5, 9]}, 3, 9, "3:9")
    assert a.snapshots == {} and a.snap_upto == 9  # a load leaves the snapshots in the store
    assert snaps == {"a": {5: [5, 0], 9: [9, 1]}}  # tuples come back as lists, offsets as int
    assert backend.raw_fence(entity_key(backend.prefix, "acct", "a", None)) == b"3:9"


async def replay(st, kind, ents, events, step):
    """What ``Job.fold`` does with redelivered records: fetch their snapshots, then apply."""
    wanted = fencing.redelivered(
        ents, [i for i, _, _ in events], [SourceRecord("t", p, o, None, None) for _, p, o in events]
    )
    for i, snaps in (await st.load_snapshots(kind, wanted)).items():
        ents[i].snapshots.update(snaps)
    return [fencing.apply(ents[i], p, off, step(off)) for i, p, off in events]


def test_snapshots_go_once_committed_or_beyond_the_last_ones_in_whole_saves(backend):
    async def go():
        st = backend.open()
        for batch in range(4):  # a committed offset moving up, 10 records a batch
            ents = await st.load("acct", ["a"], fresh)
            for off in range(batch * 10, batch * 10 + 10):
                fencing.apply(ents["a"], 1, off, appending(off), committed=max(0, batch * 10 - 15))
            await st.save("acct", ents, keep)
        committed = await st.load_snapshots("acct", {"a": range(100)})
        for batch in range(4, 12):  # no committed offset: the last SNAPSHOTS_KEPT stay
            ents = await st.load("acct", ["a"], fresh)
            for off in range(batch * 10, batch * 10 + 10):
                fencing.apply(ents["a"], 1, off, appending(off))
            await st.save("acct", ents, keep)
        return committed, await st.load_snapshots("acct", {"a": range(200)})

    committed, last = run(backend, go)
    assert sorted(committed["a"]) == list(range(10, 40))  # whole saves: 10-19 holds 15-19
    assert sorted(last["a"]) == list(range(50, 120))  # at least SNAPSHOTS_KEPT (64), whole saves of 10
    assert last["a"][100] == [100, 100]


def test_redelivery_after_a_round_trip_returns_the_stored_outputs(backend):
    async def go():
        st = backend.open()
        ents = await st.load("user", ["u"], fresh)
        first = [fencing.apply(ents["u"], 0, off, appending(off)) for off in range(4)]
        await st.save("user", ents, keep)
        again = await st.load("user", ["u"], fresh)
        replayed = await replay(st, "user", again, [("u", 0, off) for off in range(4)], appending)
        return first, replayed, again["u"]

    first, replayed, u = run(backend, go)
    assert replayed == [list(o) for o in first] and not u.dirty and u.state == {"seen": [0, 1, 2, 3]}


def test_fence_moved_by_another_writer_is_a_conflict_and_keeps_their_write(backend):
    async def go():
        mine, theirs = backend.open(), backend.open()
        held = await mine.load("acct", ["a", "b"], fresh)
        taken = await theirs.load("acct", ["a"], fresh)
        fencing.apply(taken["a"], 0, 1, appending("theirs"))
        await theirs.save("acct", taken, keep)
        fencing.apply(held["a"], 0, 1, appending("mine"))
        fencing.apply(held["b"], 0, 2, appending("mine"))
        with pytest.raises(StateConflict) as err:
            await mine.save("acct", held, keep)
        return err.value, held, await backend.open().load("acct", ["a", "b"], fresh)

    err, held, back = run(backend, go)
    assert "1 acct state(s)" in str(err) and "'a'" not in str(err)  # ids only as pseudonyms
    assert back["a"].state == {"seen": ["theirs"]}  # theirs stands
    assert back["b"].state == {"seen": ["mine"]} and not held["b"].dirty  # the rest of the batch is written
    assert held["a"].dirty  # the lost one is not settled


def test_a_second_save_compares_against_the_fence_it_wrote(backend):
    async def go():
        st = backend.open()
        ents = await st.load("acct", ["a"], fresh)
        fencing.apply(ents["a"], 0, 1, appending(1))
        await st.save("acct", ents, keep)
        fencing.apply(ents["a"], 0, 2, appending(2))
        await st.save("acct", ents, keep)
        return await st.load("acct", ["a"], fresh)

    assert run(backend, go)["a"].state == {"seen": [1, 2]}


def test_expiry_is_set_per_kind_on_each_write(backend):
    retention = {"acct": 1500, "user": 0}

    async def write():
        st = backend.open(retention_ms=retention)
        for kind in ("acct", "user"):
            ents = await st.load(kind, ["x"], fresh)
            fencing.apply(ents["x"], 0, 1, appending(kind))
            await st.save(kind, ents, keep)

    run(backend, write)
    acct, user = (entity_key(backend.prefix, k, "x", None) for k in ("acct", "user"))
    assert 0 < backend.pttl(acct) <= 1500
    assert backend.pttl(user) == -1  # 0 = kept forever
    deadline = time.monotonic() + 20
    while backend.pttl(acct) != -2:
        assert time.monotonic() < deadline, "the account state did not expire"
        time.sleep(0.1)

    async def reload():
        st = backend.open(retention_ms=retention)
        return await st.load("acct", ["x"], fresh), await st.load("user", ["x"], fresh)

    a, u = run(backend, reload)
    assert a["x"].offset == -1 and a["x"].state == {"seen": []}  # expired = new
    assert u["x"].state == {"seen": ["user"]}


def test_key_secret_pseudonymises_ids_in_keys(backend):
    ids = ["DE89370400440532013000", "GB29NWBK60161331926819"]

    async def go():
        st = backend.open(key_secret=b"s3cret")
        ents = await st.load("acct", ids, fresh)
        for i in ids:
            fencing.apply(ents[i], 0, 1, appending(i))
        await st.save("acct", ents, keep)
        same = await backend.open(key_secret=b"s3cret").load("acct", ids, fresh)
        other = await backend.open(key_secret=b"other").load("acct", ids, fresh)
        return same, other

    same, other = run(backend, go)
    assert backend.stored_keys() == sorted(f"{backend.prefix}:acct:{{{pseudonym(b's3cret', i)}}}" for i in ids)
    assert not any(i[:8] in k for k in backend.stored_keys() for i in ids)
    assert [same[i].state for i in ids] == [{"seen": [i]} for i in ids]
    assert all(other[i].offset == -1 for i in ids)


def test_many_keys_in_one_batch_across_cluster_slots(backend):
    ids = [f"card-{n}" for n in range(300)]
    slots = {key_slot(entity_key(backend.prefix, "card", i, None).encode()) for i in ids}
    assert len({s * 3 // 16384 for s in slots}) == 3  # the batch spans all three nodes' ranges

    async def go():
        st = backend.open()
        ents = await st.load("card", ids, fresh)
        for n, i in enumerate(ids):
            fencing.apply(ents[i], n % 4, n, appending(n))
        await st.save("card", ents, keep)
        return await backend.open().load("card", ids, fresh)

    back = run(backend, go)
    assert [(back[i].state["seen"], back[i].partition, back[i].offset) for i in ids] == [
        ([n], n % 4, n) for n in range(300)
    ]
    assert len(backend.stored_keys()) == 300


def test_order_within_a_key_holds_across_batches(backend):
    syms = ["A", "B", "C", "D", "E"]

    async def go():
        st = backend.open()
        for batch in range(3):  # interleaved keys, each batch one load and one save
            ents = await st.load("bar", syms, fresh)
            for off in range(batch * 20, batch * 20 + 20):
                fencing.apply(ents[syms[off % 5]], 0, off, appending(off))
            await st.save("bar", ents, keep)
        return await backend.open().load("bar", syms, fresh)

    back = run(backend, go)
    for k, sym in enumerate(syms):
        assert back[sym].state["seen"] == list(range(k, 60, 5)), sym
        assert back[sym].offset == 55 + k


def test_expiry_follows_each_save_even_a_lost_one_and_retention_0_leaves_it(backend):
    key = entity_key(backend.prefix, "acct", "a", None)

    async def go():
        keeper, expiring = backend.open(), backend.open(retention_ms={"acct": 60_000})
        held = await expiring.load("acct", ["a"], fresh)
        taken = await keeper.load("acct", ["a"], fresh)
        fencing.apply(taken["a"], 0, 1, appending("keeper"))
        await keeper.save("acct", taken, keep)  # retention 0: no expiry
        ttl_after_keeper = backend.pttl(key)
        fencing.apply(held["a"], 0, 1, appending("expiring"))
        with pytest.raises(StateConflict):
            await expiring.save("acct", held, keep)  # lost, but its PEXPIRE still lands
        ttl_after_lost = backend.pttl(key)
        again = await keeper.load("acct", ["a"], fresh)
        fencing.apply(again["a"], 0, 2, appending("keeper"))
        await keeper.save("acct", again, keep)  # retention 0 leaves the expiry alone
        return ttl_after_keeper, ttl_after_lost, backend.pttl(key)

    before, lost, kept = run(backend, go)
    assert before == -1 and 0 < lost <= 60_000 and 0 < kept <= 60_000
