"""Property-based tests of the edge (issue 7): at least 10,000 generated records per input kind
through the pure parsing and validation core, plus the features and the dead letter built from
what the edge lets through or refuses.

Each hypothesis example is a batch of ``BATCH`` records, so 10,000 records cost 100 examples
(seconds, not minutes). Properties, for every record:

* the edge either returns an event or raises ``ContractError`` (never any other exception);
* an accepted event is inside the documented ranges, its strings carry no control characters,
  its ISO codes are ASCII, and its wire form parses back to the same event;
* a refusal reason is one short line and never contains a value of the record;
* a dead letter for any record fits its bound; features of accepted transactions are finite.
"""

from __future__ import annotations

import dataclasses
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core import contracts as c
from stream.core.contracts import ContractError, decode, to_record
from stream.core.features import AccountState, advance, txn_features
from stream.core.fields import TS_MAX_MS, TS_MIN_MS
from stream.core.logsafe import has_control
from stream.core.records import DEAD_LETTER_ORIGINAL_MAX, SourceRecord, dead_letter
from stream.pipelines import PARSERS
from tests.property.edge_records import MARK, VALID, record

BATCH = 100
EXAMPLES = 100  # x BATCH = 10,000 records per kind


def _strings(event) -> list[str]:
    return [getattr(event, f.name) for f in dataclasses.fields(event) if isinstance(getattr(event, f.name), str)]


def check_accepted(kind: str, event) -> None:
    assert TS_MIN_MS <= event.ts <= TS_MAX_MS
    assert not any(has_control(s) for s in _strings(event))
    if kind == "ticks":
        assert c.PRICE_MIN <= event.price <= c.PRICE_MAX and math.isfinite(event.price)
        assert event.volume is None or 0 <= event.volume <= c.VOLUME_MAX
        assert event.bid is None or event.ask is None or event.bid <= event.ask
    elif kind == "transactions":
        assert 0 < event.amount <= c.AMOUNT_MAX
        assert event.currency.isascii() and len(event.currency) == 3 and event.currency.isalpha()
        assert event.country.isascii() and len(event.country) == 2 and event.country.isalpha()
        assert event.channel in c.CHANNELS
    else:
        assert event.action in c.ACTIONS
    assert PARSERS[kind](decode(orjson.dumps(to_record(event)))) == event, "wire form must round-trip"


def run_kind(kind: str) -> dict:
    seen = {"records": 0, "accepted": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.lists(record(kind), min_size=BATCH, max_size=BATCH))
    def check(batch: list[bytes]) -> None:
        state = AccountState()
        for raw in batch:
            seen["records"] += 1
            try:
                event = PARSERS[kind](decode(raw, 65_536))
            except ContractError as exc:
                seen["refused"] += 1
                reason = str(exc)
                assert reason and len(reason) < 300 and not has_control(reason), reason
                assert MARK not in reason, f"a value reached the reason: {reason}"
                dl = dead_letter("dl", SourceRecord(kind, 0, 1, b"k", raw), reason)
                assert len(dl.value) < DEAD_LETTER_ORIGINAL_MAX * 4 // 3 + 2_048
                continue
            seen["accepted"] += 1
            check_accepted(kind, event)
            if kind == "transactions":
                row = txn_features(state, event.ts, event.amount, event.country, event.merchant_category, event.channel)
                assert all(math.isfinite(v) for v in row), row
                state = advance(state, event.ts, event.amount, event.country, event.merchant_category)

    check()
    return seen


@pytest.mark.parametrize("kind", sorted(VALID))
def test_edge_properties_hold_for_10k_records(kind):
    seen = run_kind(kind)
    print(f"\n{kind}: {seen}")
    assert seen["records"] >= 10_000
    # the generator must exercise both sides of the edge, or the properties prove little
    assert seen["accepted"] >= 500 and seen["refused"] >= 2_000, seen


@given(st.binary(min_size=0, max_size=300_000))
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_a_dead_letter_always_fits(raw):
    dl = dead_letter("dl", SourceRecord("ticks", 0, 1, raw[:5000], raw), "x" * 10_000)
    assert len(dl.value) < 64_000
    body = orjson.loads(dl.value)
    assert body["original_length"] == len(raw) and body.get("original_truncated", False) == (len(raw) > 16_384)


def test_huge_amounts_already_in_state_keep_features_finite():
    """Finite arithmetic even for state written before the edge bounded amounts."""
    st_ = AccountState()
    for i in range(3):
        row = txn_features(st_, 1_704_067_200_000 + i, 1e308, "DE", "grocery", "pos")
        assert all(math.isfinite(v) for v in row)
        st_ = advance(st_, 1_704_067_200_000 + i, 1e308, "DE", "grocery")
    assert all(math.isfinite(v) for v in txn_features(st_, 1_704_067_300_000, 10.0, "DE", "grocery", "pos"))
