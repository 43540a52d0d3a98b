"""Fences on every backend: a save compares each entity's fence with the one it loaded, so a moved
fence is a conflict that keeps the other writer's state, and a second save compares against its own."""

from __future__ import annotations

import pytest

from stream.core import fencing
from stream.state.entities import StateConflict
from tests.integration.state_contract.backends import appending, fresh, keep, run


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
