"""The stored form of a fenced entity (``stream.state.entities``): the state in the blob, output
snapshots in chunks of their own that a load does not read and a save only adds to and drops;
blobs written before (forms 1 and 2, snapshots inside the blob) still load and still answer
redeliveries byte for byte."""

from __future__ import annotations

import orjson
import pytest

from stream.core import fencing
from stream.core.fencing import SNAPSHOTS_KEPT, Fenced, StoredOutput
from stream.core.records import SourceRecord
from stream.state.entities import (
    FORM,
    REPLACE,
    log_entries,
    next_index,
    read_stored,
    save_fields,
    settle,
    snap_update,
    unpack,
)


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


def stored(e: Fenced, fields: dict | None = None) -> tuple[bytes, bytes, dict]:
    """(fence, blob, the other fields) as a backend stores them after saving ``e`` over ``fields``
    (``e`` loaded from them: its index is the stored one, which the compare-and-set guarantees)."""
    fields = dict(fields or {})
    assert e.loaded_index == fields.get(b"ix")
    blob, fields[b"ix"], chunks = save_fields(e, same)
    fields.update(zip(chunks[::2], chunks[1::2]))
    return f"{e.partition}:{e.offset}".encode(), blob, fields


def load(fence: bytes, blob: bytes, fields: dict) -> Fenced:
    """As a backend loads it: fence, blob and the snapshot index."""
    return unpack(fence, blob, fresh, fields.get(b"ix"))


def test_the_blob_holds_the_state_and_a_chunk_the_snapshots_as_text():
    fence, blob, fields = stored(saved([5, 9]))
    d = orjson.loads(blob)
    assert d == {"f": FORM, "s": {"seen": [5, 9]}, "snap": {}}  # "snap": {} so older readers still load it
    assert fields == {b"ix": b"1||0:5:9:2;", b"c0": b'5:27:{"tag":5,"n":0,"w":[5,0.5]}9:27:{"tag":9,"n":1,"w":[9,0.9]}'}
    e = load(fence, blob, fields)
    assert (e.state, e.partition, e.offset, e.loaded_fence) == ({"seen": [5, 9]}, 3, 9, "3:9")
    assert e.snapshots == {} and e.snap_upto == 9  # not loaded: they stay in the store
    got = read_stored(fields, [9, 5, 7])
    assert all(type(v) is StoredOutput for v in got.values())
    assert got == {5: {"tag": 5, "n": 0, "w": [5, 0.5]}, 9: {"tag": 9, "n": 1, "w": [9, 0.9]}}


def test_a_redelivery_answers_from_the_store_with_the_bytes_a_fresh_apply_gave():
    e = saved([5, 9])
    first = {o: orjson.dumps(e.snapshots[o]) for o in (5, 9)}
    fence, blob, fields = stored(e)
    loaded = load(fence, blob, fields)
    wanted = fencing.redelivered({"a": loaded}, ["a"] * 3, [rec(3, 5), rec(3, 10), rec(2, 5)])
    assert wanted == {"a": [5]}  # not the new offset, not another partition's
    loaded.snapshots.update(read_stored(fields, wanted["a"]))
    again = fencing.apply(loaded, 3, 5, appending(5))
    assert orjson.dumps(again) == first[5]
    assert loaded.state == {"seen": [5, 9]} and not loaded.dirty  # a redelivery changes nothing
    with pytest.raises(fencing.ReplayGap):  # one the store does not hold cannot be answered
        fencing.apply(loaded, 3, 4, appending(4))


def test_a_save_sends_only_new_snapshots_and_chunks_go_once_all_committed():
    fence, blob, fields = stored(saved([5, 9]))
    for batch in ([12, 13], [15]):
        loaded = load(fence, blob, fields)
        loaded.snapshots.update(read_stored(fields, [9]))  # fetched for a redelivery: not sent again
        for off in batch:
            fencing.apply(loaded, 3, off, appending(off), committed=10)
        keep, max_count, _new, count, first, last = snap_update(loaded)
        assert (keep, max_count, count, first, last) == ("10", 0, len(batch), batch[0], batch[-1])
        fence, blob, fields = stored(loaded, fields)
    # 5 and 9 (one chunk, all below 10) are gone; slot 0 was reused for [12, 13], slot 1 made for [15]
    assert fields[b"ix"] == b"2||0:12:13:2;1:15:15:1;"
    assert list(read_stored(fields)) == [12, 13, 15]
    assert read_stored(fields, [12]) == {12: {"tag": 12, "n": 2, "w": [12, 1.2000000000000002]}}
    assert orjson.loads(blob)["s"] == {"seen": [5, 9, 12, 13, 15]}


def test_without_a_committed_offset_at_least_the_last_ones_are_kept_in_whole_saves():
    fields: dict = {}
    e = saved([0])
    for off in range(1, 3 * SNAPSHOTS_KEPT):
        fence, blob, fields = stored(e, fields)
        e = load(fence, blob, fields)
        fencing.apply(e, 3, off, appending(off))
    _, _, fields = stored(e, fields)
    assert list(read_stored(fields)) == list(range(2 * SNAPSHOTS_KEPT, 3 * SNAPSHOTS_KEPT))
    ix, slot, emptied = next_index(b"3|7,|0:0:9:10;1:10:19:10;2:20:29:10;", "-1", 25, 10, 30, 39)
    assert (ix, slot, emptied) == (b"3|7,|1:10:19:10;2:20:29:10;0:30:39:10;", 0, [])  # freed slot 0 reused
    assert next_index(b"3|7,|1:10:19:10;", "20", 0, 0, 0, 0) == (b"3|1,7,|", None, [1])  # its field emptied


def test_a_partition_change_replaces_the_snapshots():
    fence, blob, fields = stored(saved([5, 9]))
    moved = load(fence, blob, fields)
    fencing.apply(moved, 1, 2, appending(2), committed=0)
    assert snap_update(moved)[0] == REPLACE
    _, _, fields = stored(moved, fields)
    assert list(read_stored(fields)) == [2] and fields[b"ix"] == b"1||0:2:2:1;"


@pytest.mark.parametrize("form", [1, 2])
def test_older_blobs_still_load_answer_redeliveries_and_move_their_snapshots_to_a_chunk(form):
    snaps = {"5": {"tag": 5, "n": 0, "w": [5, 0.5]}, "9": {"tag": 9, "n": 1, "w": [9, 0.9]}}
    if form == 1:
        old = orjson.dumps({"s": {"seen": [5, 9]}, "snap": snaps})
    else:
        old = orjson.dumps(
            {"f": 2, "s": {"seen": [5, 9]}, "snap": {k: orjson.dumps(v).decode() for k, v in snaps.items()}}
        )
    stale = {b"ix": b"1||0:1:1:1;", b"c0": b"1:4:null"}  # chunks an older worker left beside its blob
    e = load(b"3:9", old, stale)
    assert (e.state, e.partition, e.offset, e.snap_upto) == ({"seen": [5, 9]}, 3, 9, None)
    assert e.snapshots == {5: snaps["5"], 9: snaps["9"]}
    assert fencing.redelivered({"a": e}, ["a"], [rec(3, 9)]) == {}  # loaded with the blob: nothing to fetch
    assert fencing.apply(e, 3, 9, appending(9)) == snaps["9"]
    fencing.apply(e, 3, 12, appending(12), committed=9)
    _, blob, fields = stored(e, stale)  # they go
    assert orjson.loads(blob)["f"] == FORM
    assert read_stored(fields) == {9: snaps["9"], 12: {"tag": 12, "n": 2, "w": [12, 1.2000000000000002]}}


def test_a_snapshot_that_is_a_string_or_none_or_not_ascii_survives():
    e = Fenced(fresh(None))
    for off, out in enumerate(["plain words", None, "prix élevé ✓"]):
        fencing.apply(e, 0, off, lambda st, out=out: (st, out))
    _, _, fields = stored(e)
    assert read_stored(fields, [0, 1, 2]) == {0: "plain words", 1: None, 2: "prix élevé ✓"}
    assert log_entries({}) == b""
    old = unpack(b"0:1", b'{"s":{"seen":[]},"snap":{"1":"plain words"}}', fresh)
    assert fencing.apply(old, 0, 1, None) == "plain words"


def test_a_second_save_of_the_same_entity_sends_only_what_came_after_the_first():
    e = saved([5, 9])
    _, _, fields = stored(e)
    settle("acct", [("a", e)], [True], None, [fields[b"ix"]])
    assert e.loaded_index == fields[b"ix"]
    fencing.apply(e, 3, 12, appending(12))
    keep, _max_count, _new, count, first, last = snap_update(e)
    assert (keep, count, first, last) == ("-1", 1, 12, 12)
    _, _, fields = stored(e, fields)
    assert fields[b"ix"] == b"2||0:5:9:2;1:12:12:1;" and list(read_stored(fields)) == [5, 9, 12]
