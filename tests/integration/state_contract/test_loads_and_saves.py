"""What a load returns and a save stores on every backend: fresh entities, the stored form, snapshots
kept and dropped, redelivered outputs, many keys across cluster slots and their order."""

from __future__ import annotations

from redis.crc import key_slot

from stream.core import fencing
from stream.state.entities import entity_key
from tests.integration.state_contract.backends import appending, fresh, keep, replay, run


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
