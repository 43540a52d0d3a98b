"""The stored form of a fenced entity (``stream.state.entities``): snapshots travel as JSON text,
decoded only for a redelivery, and blobs written before (form 1) still load and still answer
redeliveries byte for byte."""

from __future__ import annotations

import orjson

from stream.core import fencing
from stream.core.fencing import Fenced, StoredOutput
from stream.state.entities import FORM, pack, unpack


def appending(tag):
    def step(st):
        return {"seen": [*st["seen"], tag]}, {"tag": tag, "n": len(st["seen"]), "w": (tag, 0.1 * tag)}

    return step


def same(x):
    return x


def fresh(d):
    return d if d is not None else {"seen": []}


def saved(offsets, partition=3):
    e = Fenced(fresh(None))
    for off in offsets:
        fencing.apply(e, partition, off, appending(off))
    return e


def test_snapshots_are_stored_as_text_and_loaded_undecoded():
    blob = pack(saved([5, 9]), same)
    d = orjson.loads(blob)
    assert d["f"] == FORM and d["s"] == {"seen": [5, 9]}
    assert list(d["snap"]) == ["5", "9"] and all(isinstance(v, str) for v in d["snap"].values())
    e = unpack(b"3:9", blob, fresh)
    assert (e.partition, e.offset, e.loaded_fence) == (3, 9, "3:9")
    assert all(type(v) is StoredOutput for v in e.snapshots.values())
    assert e.snapshots == {5: {"tag": 5, "n": 0, "w": [5, 0.5]}, 9: {"tag": 9, "n": 1, "w": [9, 0.9]}}
    # carried through a save unchanged: the same bytes, nothing re-serialised
    assert pack(e, same) == blob


def test_a_redelivery_decodes_its_snapshot_to_what_a_fresh_apply_gave():
    e = saved([5, 9])
    first = {o: orjson.dumps(e.snapshots[o]) for o in (5, 9)}
    loaded = unpack(b"3:9", pack(e, same), fresh)
    again = fencing.apply(loaded, 3, 5, appending(5))
    assert orjson.dumps(again) == first[5]
    assert loaded.state == {"seen": [5, 9]} and not loaded.dirty  # a redelivery changes nothing


def test_new_and_loaded_snapshots_mix_and_trim_in_offset_order():
    loaded = unpack(b"3:9", pack(saved([5, 9]), same), fresh)
    fencing.apply(loaded, 3, 12, appending(12), committed=9)  # 5 is committed: dropped
    assert list(loaded.snapshots) == [9, 12]
    assert type(loaded.snapshots[9]) is StoredOutput and type(loaded.snapshots[12]) is dict
    again = unpack(b"3:12", pack(loaded, same), fresh)
    assert again.snapshots == {
        9: {"tag": 9, "n": 1, "w": [9, 0.9]},
        12: {"tag": 12, "n": 2, "w": [12, 1.2000000000000002]},
    }


def test_form_1_blobs_still_load_and_answer_redeliveries():
    old = b'{"s":{"seen":[5,9]},"snap":{"5":{"tag":5,"n":0,"w":[5,0.5]},"9":{"tag":9,"n":1,"w":[9,0.9]}}}'
    e = unpack(b"3:9", old, fresh)
    assert (e.state, e.partition, e.offset) == ({"seen": [5, 9]}, 3, 9)
    assert e.snapshots == {5: {"tag": 5, "n": 0, "w": [5, 0.5]}, 9: {"tag": 9, "n": 1, "w": [9, 0.9]}}
    assert fencing.apply(e, 3, 9, appending(9)) == {"tag": 9, "n": 1, "w": [9, 0.9]}
    # the next save writes form 2, with the same snapshot values
    rewritten = orjson.loads(pack(e, same))
    assert rewritten["f"] == FORM
    assert {k: orjson.loads(v) for k, v in rewritten["snap"].items()} == orjson.loads(old)["snap"]


def test_a_snapshot_that_is_a_string_survives_both_forms():
    e = Fenced(fresh(None))
    fencing.apply(e, 0, 1, lambda st: (st, "plain words"))
    loaded = unpack(b"0:1", pack(e, same), fresh)
    assert fencing.apply(loaded, 0, 1, None) == "plain words"
    old = unpack(b"0:1", b'{"s":{"seen":[]},"snap":{"1":"plain words"}}', fresh)
    assert fencing.apply(old, 0, 1, None) == "plain words"
