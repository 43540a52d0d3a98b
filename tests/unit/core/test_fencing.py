import pytest

from stream.core import fencing
from stream.core.fencing import Fenced


def counter_step(x):
    def step(total):
        return total + x, total + x

    return step


def run(entity, log):
    return [fencing.apply(entity, p, o, counter_step(x)) for p, o, x in log]


def test_redelivery_changes_nothing_and_reproduces_outputs():
    log = [(0, o, o * 10) for o in range(5)]
    clean = Fenced(0)
    clean_out = run(clean, log)
    crashed = Fenced(0)
    first = run(crashed, log[:3])
    again = run(crashed, log)  # offsets 0..2 redelivered, then 3..4 new
    assert first + again[3:] == clean_out
    assert again == clean_out
    assert crashed.state == clean.state == sum(x for *_, x in log)


def test_partition_change_is_new_data():
    e = Fenced(0)
    run(e, [(0, 100, 1)])
    assert run(e, [(1, 5, 2)]) == [3]  # offset 5 < 100 but on another partition: applied
    assert e.partition == 1 and list(e.snapshots) == [5]


def test_gap_is_an_error_not_a_silent_skip():
    e = Fenced(0)
    run(e, [(0, o, 1) for o in range(fencing.SNAPSHOTS_KEPT + 5)])
    with pytest.raises(fencing.ReplayGap):
        fencing.apply(e, 0, 0, counter_step(1))
    assert len(e.snapshots) == fencing.SNAPSHOTS_KEPT


def test_snapshots_stay_until_committed_however_many():
    """With the committed offset known, a busy entity keeps every uncommitted output (more than
    SNAPSHOTS_KEPT of them) and a redelivery of all of them reproduces each one."""
    n = fencing.SNAPSHOTS_KEPT * 3
    log = [(0, 1000 + o, 1) for o in range(n)]
    e = Fenced(0)
    first = [fencing.apply(e, p, o, counter_step(x), committed=1000) for p, o, x in log]
    assert len(e.snapshots) == n
    again = [fencing.apply(e, p, o, counter_step(x), committed=1000) for p, o, x in log]
    assert again == first and e.state == n


def test_snapshots_below_the_committed_offset_go():
    e = Fenced(0)
    for o in range(10):
        fencing.apply(e, 0, o, counter_step(1), committed=0)
    fencing.apply(e, 0, 10, counter_step(1), committed=7)
    assert sorted(e.snapshots) == [7, 8, 9, 10]
    assert fencing.apply(e, 0, 8, counter_step(1), committed=7) == 9  # still reproducible
    with pytest.raises(fencing.ReplayGap):  # committed: never redelivered
        fencing.apply(e, 0, 6, counter_step(1), committed=7)
