"""``parse_user_event`` reads the usual record directly; whatever the record, it must give what
the field readers give (``_parse_user_event``): the same event, or the same refusal reason."""

from __future__ import annotations

import random

from stream.core import contracts as c
from stream.core.contracts import parse_user_event
from tests.unit.core.mutations import mutate, outcome

_VALUES = [
    None, True, False, 0, 1, 2, -1, 1.0, 1.5, float("nan"), 1_700_000_000_000, 1_700_000_000_000.0, 1_700_000_000,
    4_102_444_800_001, 100_000_000_000, "", " ", "car", " car", "car ", "CAR", "view", "View", "VIEW ", "buy", "spend",
    "stare", "user-1", "u\x00", "u\t1", "caf\u00e9", "x" * 64, "x" * 65, "a b", [], {}, ["car"], {"MOSTYPE": 1},
]  # fmt: skip


def _records(n: int, seed: int):
    rnd = random.Random(seed)
    fields = ["v", "user_id", "ts", "product_id", "action", "event_id", "attributes", "merchant_category", "other"]
    for _ in range(n):
        d = {"v": 1, "user_id": "user-00042", "ts": 1_700_000_123_456, "product_id": "car", "action": "view"}
        if rnd.random() < 0.5:
            d["event_id"] = "ue-7-0000000042"
        yield mutate(d, rnd, fields, _VALUES)


def test_the_usual_record_and_every_mutation_of_it_parse_as_the_field_readers_say():
    fast = 0
    for d in _records(20_000, seed=5):
        got, want = outcome(parse_user_event, d), outcome(c._parse_user_event, d)
        assert got == want, d
        assert type(got) is type(want)
        fast += type(got) is c.UserEvent
    assert fast > 5_000  # most stay valid: the comparison covers accepted events, not only refusals
