"""The bench's own collector is off while a Kafka run is timed, and back on (nothing left frozen) after."""

import gc

import pytest

from stream.tools.bench_e2e import _collector_paused


def test_collector_is_off_while_timed_and_restored_after_even_on_error():
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with _collector_paused():
            assert not gc.isenabled()
            assert gc.get_freeze_count() >= frozen_before
            raise RuntimeError("a run that fails")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_cycles_made_while_timed_are_collected_on_the_way_out():
    class Node:
        pass

    with _collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        ids = {id(a), id(b)}
        del a, b
        assert any(id(o) in ids for o in gc.get_objects())  # the cycle waits: the collector is off
    assert not any(id(o) in ids and isinstance(o, Node) for o in gc.get_objects())
