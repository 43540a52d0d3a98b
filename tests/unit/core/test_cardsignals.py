"""The card path's per-event helpers give what their plain definitions give (fast paths included)."""

from __future__ import annotations

import copy
import math

import pytest

from stream.core.cardevent import CardEvent
from stream.core.cardsignals import (
    DELTA_SIGNALS,
    PROVIDER_SIGNALS,
    _value,
    delta_values,
    remember_signals,
    signal_deltas,
    signal_values,
)
from stream.core.cardstate import CardState, advance_card
from tests.unit.core.cards import T0, history, transaction


@pytest.mark.parametrize(
    "signals",
    [
        None,
        {},
        {"C1": 3.0, "V13": 0.5, "id_13": -1.0, "unknown": 9.0},
        {s: float(i) for i, s in enumerate(PROVIDER_SIGNALS)},
        {"C1": 3, "C2": 2.5},  # an int (a dict not from the contract)
        {"C1": 3.0, "C2": None},
        {"C1": 3.0, "C2": True},
        {"C1": 3.0, "C2": math.nan},
        {"C1": 3.0, "C2": math.inf},
        {"C1": 3.0, "C2": "7"},
        {"C1": 3.0, "C2": "x"},
    ],
)
def test_signal_values_are_each_signal_read_by_value(signals):
    expected = [_value((signals or {}).get(s)) for s in PROVIDER_SIGNALS]
    got = signal_values(signals)
    assert got == expected and all(type(v) is float for v in got)


@pytest.mark.parametrize(
    "signals",
    [
        None,
        {},
        {"C1": 3.0, "C13": 0.0},
        {s: float(i) for i, s in enumerate(DELTA_SIGNALS)},
        {"C1": 3, "C2": -0.0},
        {"C1": 3.0, "C2": None, "C5": True, "C9": math.nan, "C11": math.inf, "C13": "7", "C14": "x"},
        {"C1": 1e308, "C2": 1e308},  # finite values whose sum is not
    ],
)
@pytest.mark.parametrize("last", [{}, {"C1": 1.0}, {"C1": 3.0, "C2": 0.0, "C13": 5.0}])
def test_delta_values_read_once_give_the_per_name_growth_and_memory(signals, last):
    """The event's counts are read once (``delta_values``) for both the growth features and the
    state: the same as reading each count by value where it is used."""
    now = delta_values(signals)
    by_name = {s: _value((signals or {}).get(s)) for s in DELTA_SIGNALS}
    assert now is None if not signals else now == list(by_name.values())
    expected = [
        by_name[s] - last[s] if signals and last and by_name[s] != -1.0 and s in last else 0.0 for s in DELTA_SIGNALS
    ]
    assert signal_deltas(now, last) == expected
    kept = dict(last)
    for s, v in by_name.items():
        if signals and v != -1.0:
            kept[s] = v
    remembered = remember_signals(now, last)
    assert remembered == kept and [math.copysign(1, v) for v in remembered.values()] == [
        math.copysign(1, v) for v in kept.values()
    ]
    if now is None:
        assert remembered is last  # nothing read: the state's dict itself


def test_variant_of_a_parsed_transaction():
    t = transaction(product_code="W", card_type="debit", card_subgroup="358", signals={"C1": 1.0})
    assert isinstance(t, CardEvent)  # a parsed transaction is its card event: nothing copied per event
    assert (t.card_type, t.card_subgroup, t.signals) == ("debit", "358", {"C1": 1.0})
    assert t.variant() == "358//debit"
    assert CardEvent(1, 1.0).variant() is None
    assert CardEvent(1, 1.0, card_country="150").variant() == "/150/"


def test_a_state_read_from_its_stored_form_leaves_it_alone_when_advanced():
    """from_stored takes the decoded lists without copying: advancing must never change them."""
    st = history(
        CardEvent(
            T0 + k * 60_000, 1.0 + k, email_domain=f"d{k}.com", device="x", card_subgroup="3", signals={"C1": float(k)}
        )
        for k in range(60)
    )
    d = copy.deepcopy(st.stored())
    before = copy.deepcopy(d)
    loaded = CardState.from_stored(d)
    advance_card(
        loaded,
        CardEvent(
            T0 + 61 * 60_000,
            2.0,
            email_domain="new.com",
            device="y",
            card_subgroup="4",
            signals={"C1": 99.0},
        ),
    )
    assert d == before
