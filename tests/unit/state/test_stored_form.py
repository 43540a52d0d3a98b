"""The stored form of a fenced entity (``stream.state.entities``): the state in the blob, output
snapshots in a log of their own that a load does not read and a save only appends to and trims;
blobs written before (forms 1 and 2, snapshots inside the blob) still load and still answer
redeliveries byte for byte."""

from __future__ import annotations

import orjson
import pytest

from stream.core import fencing
from stream.core.fencing import SNAPSHOTS_KEPT, Fenced, StoredOutput
from stream.core.records import SourceRecord
from stream.state.entities import FORM, REPLACE, log_entries, merge_log, pack, read_log, snap_update, unpack


def appending(tag):
    def step(st):
        return {"seen": [*st["seen"], tag]}, {"tag": tag, "n": len(st["seen"]), "w": (tag, 0.1 * tag)}

    return step


def rec(partition, offset):
    return SourceRecord("t", partition, offset, None, None)


def same(x):
    return x


def fresh(d):
    return d if d is not None else {"seen": []}


def saved(offsets, partition=3, committed=None):
    e = Fenced(fresh(None))
    for off in offsets:
        fencing.apply(e, partition, off, appending(off), committed)
    return e


def stored(e: Fenced, log: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """(fence, blob, log) as a backend stores them after saving ``e`` over ``log``."""
    return f"{e.partition}:{e.offset}".encode(), pack(e, same), merge_log(log, *snap_update(e))


def test_the_blob_holds_the_state_and_the_log_the_snapshots_as_text():
    fence, blob, log = stored(saved([5, 9]))
    d = orjson.loads(blob)
    assert d == {"f": FORM, "s": {"seen": [5, 9]}, "snap": {}}  # "snap": {} so older readers still load it
    assert log == b'5:27:{"tag":5,"n":0,"w":[5,0.5]}9:27:{"tag":9,"n":1,"w":[9,0.9]}'
    e = unpack(fence, blob, fresh)
    assert (e.state, e.partition, e.offset, e.loaded_fence) == ({"seen": [5, 9]}, 3, 9, "3:9")
    assert e.snapshots == {} and e.snap_upto == 9  # not loaded: they stay in the log
    got = read_log(log, [9, 5, 7])
    assert all(type(v) is StoredOutput for v in got.values())
    assert got == {5: {"tag": 5, "n": 0, "w": [5, 0.5]}, 9: {"tag": 9, "n": 1, "w": [9, 0.9]}}


def test_a_redelivery_answers_from_the_log_with_the_bytes_a_fresh_apply_gave():
    e = saved([5, 9])
    first = {o: orjson.dumps(e.snapshots[o]) for o in (5, 9)}
    fence, blob, log = stored(e)
    loaded = unpack(fence, blob, fresh)
    wanted = fencing.redelivered({"a": loaded}, ["a"] * 3, [rec(3, 5), rec(3, 10), rec(2, 5)])
    assert wanted == {"a": [5]}  # not the new offset, not another partition's
    loaded.snapshots.update(read_log(log, wanted["a"]))
    again = fencing.apply(loaded, 3, 5, appending(5))
    assert orjson.dumps(again) == first[5]
    assert loaded.state == {"seen": [5, 9]} and not loaded.dirty  # a redelivery changes nothing
    with pytest.raises(fencing.ReplayGap):  # one the log does not hold cannot be answered
        fencing.apply(loaded, 3, 4, appending(4))


def test_a_save_sends_only_new_snapshots_and_the_log_drops_the_committed_ones():
    fence, blob, log = stored(saved([5, 9]))
    loaded = unpack(fence, blob, fresh)
    loaded.snapshots.update(read_log(log, [9]))  # fetched for a redelivery: not sent again
    fencing.apply(loaded, 3, 12, appending(12), committed=9)  # 5 is committed: dropped
    keep, max_count, new, count = snap_update(loaded)
    assert (keep, max_count, count) == ("9", 0, 1) and new.startswith(b"12:")
    _, blob2, log2 = stored(loaded, log)
    assert list(read_log(log2, range(20))) == [9, 12]
    assert read_log(log2, [12]) == {12: {"tag": 12, "n": 2, "w": [12, 1.2000000000000002]}}
    assert orjson.loads(blob2)["s"] == {"seen": [5, 9, 12]}


def test_without_a_committed_offset_the_log_keeps_the_last_ones():
    log = None
    e = saved([0])
    for off in range(1, 3 * SNAPSHOTS_KEPT):
        fence, blob, log = stored(e, log)
        e = unpack(fence, blob, fresh)
        fencing.apply(e, 3, off, appending(off))
    _, _, log = stored(e, log)
    assert list(read_log(log, range(1000))) == list(range(2 * SNAPSHOTS_KEPT, 3 * SNAPSHOTS_KEPT))


def test_a_partition_change_replaces_the_log():
    fence, blob, log = stored(saved([5, 9]))
    moved = unpack(fence, blob, fresh)
    fencing.apply(moved, 1, 2, appending(2), committed=0)
    assert snap_update(moved)[0] == REPLACE
    _, _, log2 = stored(moved, log)
    assert list(read_log(log2, range(20))) == [2]


@pytest.mark.parametrize("form", [1, 2])
def test_older_blobs_still_load_answer_redeliveries_and_move_their_snapshots_to_the_log(form):
    snaps = {"5": {"tag": 5, "n": 0, "w": [5, 0.5]}, "9": {"tag": 9, "n": 1, "w": [9, 0.9]}}
    if form == 1:
        old = orjson.dumps({"s": {"seen": [5, 9]}, "snap": snaps})
    else:
        old = orjson.dumps(
            {"f": 2, "s": {"seen": [5, 9]}, "snap": {k: orjson.dumps(v).decode() for k, v in snaps.items()}}
        )
    e = unpack(b"3:9", old, fresh)
    assert (e.state, e.partition, e.offset, e.snap_upto) == ({"seen": [5, 9]}, 3, 9, None)
    assert e.snapshots == {5: snaps["5"], 9: snaps["9"]}
    assert fencing.redelivered({"a": e}, ["a"], [rec(3, 9)]) == {}  # loaded with the blob: nothing to fetch
    assert fencing.apply(e, 3, 9, appending(9)) == snaps["9"]
    fencing.apply(e, 3, 12, appending(12), committed=9)
    _, blob, log = stored(e, b"1:4:null")  # a stale log beside an older blob is replaced
    assert orjson.loads(blob)["f"] == FORM
    assert read_log(log, range(20)) == {9: snaps["9"], 12: {"tag": 12, "n": 2, "w": [12, 1.2000000000000002]}}


def test_a_snapshot_that_is_a_string_or_none_or_not_ascii_survives():
    e = Fenced(fresh(None))
    for off, out in enumerate(["plain words", None, "prix élevé ✓"]):
        fencing.apply(e, 0, off, lambda st, out=out: (st, out))
    _, _, log = stored(e)
    assert read_log(log, [0, 1, 2]) == {0: "plain words", 1: None, 2: "prix élevé ✓"}
    assert log_entries({}) == b""
    old = unpack(b"0:1", b'{"s":{"seen":[]},"snap":{"1":"plain words"}}', fresh)
    assert fencing.apply(old, 0, 1, None) == "plain words"
