"""``parse_transaction`` reads the usual record directly; whatever the record, it must give what
the field readers give (``_parse_transaction``): the same transaction, or the same refusal reason
(the dead letter's reason must not depend on which path read the record)."""

from __future__ import annotations

import random

from stream.core import contracts as c
from stream.core.contracts import parse_transaction
from tests.unit.core.mutations import mutate, outcome

_VALUES = [
    None, True, False, 0, 1, 2, -1, 1.0, 3.46, 0.0, -3.5, 1e12, 1.0000001e12, float("nan"), float("inf"),
    1_700_000_000_000, 1_700_000_000_000.0, 1_700_000_000, 4_102_444_800_001, 100_000_000_000, "", " ", "US", "us",
    "U", "USD", "usd", "UsD", " US", "USD ", "ÉUR", "U1", "pos", "POS", "ecom ", "atm", "wire", "acct-1", "a\x00",
    "a\t1", "caf\u00e9", "x" * 8, "x" * 9, "x" * 16, "x" * 17, "x" * 64, "x" * 65, "a b", [], {}, ["pos"],
    {"C1": 1.0}, {"C1": 1}, {"C1": True}, {"": 1.0}, {"C1": 1e308, "C2": 1e308},
]  # fmt: skip
_FIELDS = [
    "v", "event_id", "account_id", "ts", "amount", "currency", "merchant_category", "channel", "country",
    "merchant_id", "user_id", "signals", "other", *c.CARD_CODE_FIELDS,
]  # fmt: skip


def _records(n: int, seed: int):
    rnd = random.Random(seed)
    for _ in range(n):
        d = {
            "v": 1,
            "event_id": "txn-7-0000000001",
            "account_id": "acct-000814",
            "ts": 1_704_067_265_074,
            "amount": 3.46,
            "currency": "USD",
            "merchant_category": "restaurant",
            "channel": "pos",
            "country": "US",
            "merchant_id": "m-restaura-261",
        }
        if rnd.random() < 0.5:  # a real-data record: card fields and processor signals
            d.update(product_code="W", card_type="debit", card_group="13926", device="Windows", signals={"C1": 1.0})
        yield mutate(d, rnd, _FIELDS, _VALUES)


def test_the_usual_record_and_every_mutation_of_it_parse_as_the_field_readers_say():
    accepted = refused = 0
    for d in _records(30_000, seed=11):
        got, want = outcome(parse_transaction, d), outcome(c._parse_transaction, d)
        assert got == want, d
        assert type(got) is type(want)
        if type(got) is c.Transaction:
            accepted += 1
            assert [type(getattr(got, f)) for f in ("ts", "amount")] == [int, float]
        else:
            refused += 1
    # both kinds are compared: accepted transactions, not only refusals, and the other way round
    assert accepted > 10_000 and refused > 3_000
