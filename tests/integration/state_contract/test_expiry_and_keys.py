"""Retention and key names on every backend: expiry per state kind on each write (a lost write
included; retention 0 keeps forever), and ids pseudonymised in keys when a key secret is set."""

from __future__ import annotations

import time

import pytest

from stream.core import fencing
from stream.core.pseudonyms import pseudonym
from stream.state.entities import StateConflict, entity_key
from tests.integration.state_contract.backends import appending, fresh, keep, run


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
