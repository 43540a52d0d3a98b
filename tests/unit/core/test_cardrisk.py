"""Card risk features (stream.core.cardrisk): behaviour on hand-made histories, state round trip,
and the contract path (old records without the card fields still featurise)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stream.core.cardrisk import (
    CARD_FEATURE_LABELS,
    CARD_FEATURES,
    EMAIL_GROUPS,
    CardEvent,
    CardState,
    advance_card,
    card_features,
    card_id,
    device_family,
    email_group,
    replay_card_features,
)
from tests.unit.core.cards import HOUR, T0, history, transaction

F = {n: i for i, n in enumerate(CARD_FEATURES)}


def test_names_labels_and_lengths_line_up():
    assert len(CARD_FEATURES) == len(set(CARD_FEATURES)) and set(CARD_FEATURE_LABELS) == set(CARD_FEATURES)
    assert len(card_features(CardState(), CardEvent(T0, 10.0))) == len(CARD_FEATURES)


def test_first_transaction_has_no_history():
    f = card_features(CardState(), CardEvent(T0, 10.5, product_code="c", email_domain="Gmail.com", device="Windows"))
    assert f[F["first_transaction"]] == 1.0
    assert f[F["log_secs_since_last"]] == -1.0 and f[F["txn_count_24h"]] == 0.0
    assert f[F["product_C"]] == 1.0 and sum(f[F[f"product_{p}"]] for p in "WCRHS") == 1.0
    assert f[F["amount_cents"]] == pytest.approx(0.5) and f[F["hour_of_day"]] == 12.0
    assert f[F["email_group"]] == EMAIL_GROUPS.index("gmail") and f[F["device_family"]] == 1.0
    assert f[F["new_email"]] == 0.0  # nothing is "new" on a card without history


def test_history_velocity_novelty_and_amount():
    st = history(
        CardEvent(
            T0 + k * 10 * 60_000,
            20.0,
            email_domain="gmail.com",
            device="iOS Device",
            product_code="W",
            billing_region="315",
        )
        for k in range(5)
    )
    e = CardEvent(
        T0 + 65 * 60_000, 900.0, email_domain="protonmail.com", device="Windows", product_code="W", billing_region="315"
    )
    f = card_features(st, e)
    assert f[F["first_transaction"]] == 0.0
    assert f[F["txn_count_1h"]] == 4.0 and f[F["txn_count_24h"]] == 5.0 and f[F["txn_count_7d"]] == 5.0
    assert f[F["log_secs_since_last"]] == pytest.approx(math.log1p(25 * 60))
    assert f[F["amount_z"]] > 5 and f[F["amount_ratio"]] == pytest.approx(900 / 20, rel=1e-6)
    assert f[F["new_email"]] == 1.0 and f[F["new_device"]] == 1.0 and f[F["new_product"]] == 0.0
    assert f[F["new_region"]] == 0.0 and f[F["distinct_emails"]] == 1.0
    assert f[F["same_amount_as_last"]] == 0.0
    assert card_features(st, CardEvent(T0 + 2 * HOUR, 20.0))[F["same_amount_as_last"]] == 1.0
    late = card_features(st, CardEvent(T0 + 8 * 24 * HOUR, 20.0))
    assert late[F["txn_count_7d"]] == 0.0 and late[F["txn_count_24h"]] == 0.0


def test_state_json_round_trip_and_purity():
    st = history(  # more than the caps
        CardEvent(T0 + k * 60_000, 1.0 + k, email_domain=f"d{k}.com", device=f"dev{k}") for k in range(70)
    )
    assert len(st.recent_ts) == len(st.recent_amounts) == 48 and len(st.emails) <= 8 and st.n == 70
    back = CardState.from_stored(json.loads(json.dumps(st.stored())))
    assert back == st
    e = CardEvent(T0 + 71 * 60_000, 5.0, email_domain="x.com")
    assert card_features(back, e) == card_features(st, e)
    before = st.stored()
    advance_card(st, e)
    assert st.stored() == before


def test_replay_equals_step_by_step():
    rng = np.random.default_rng(1)
    events = [
        (f"c{rng.integers(3)}", CardEvent(T0 + i * 7 * 60_000, float(rng.integers(1, 500)), product_code="WCR"[i % 3]))
        for i in range(60)
    ]
    states: dict[str, CardState] = {}
    want = []
    for key, e in events:
        st = states.get(key, CardState())
        want.append(card_features(st, e))
        states[key] = advance_card(st, e)
    np.testing.assert_array_equal(replay_card_features(events), np.asarray(want, np.float32))


def test_card_id_email_and_device_codes():
    assert card_id(13926, float("nan"), 150.0, 142.0, 315.0, 87.0) == "13926--150-142-315-87"
    assert card_id(13926.0, 315.0) == "13926-315" and card_id(13926, None) == "13926-"
    assert email_group(None) == 0 and email_group("yahoo.com.mx") == EMAIL_GROUPS.index("yahoo")
    assert email_group("weird.org") == EMAIL_GROUPS.index("other")
    assert device_family("SM-G610M Build/MMB29K") == 4 and device_family("rv:11.0") == 5 and device_family(None) == 0


def test_contract_records_with_and_without_card_fields():
    old = transaction()
    assert old.product_code is None and old.device is None
    assert len(card_features(CardState(), old)) == len(CARD_FEATURES)
    new = transaction(
        product_code="W", card_type="142", device="Windows", email_domain="gmail.com", billing_region="315"
    )
    f = card_features(CardState(), new)
    assert f[F["product_W"]] == 1.0 and f[F["card_type"]] == 142.0 and f[F["billing_region"]] == 315.0
    with pytest.raises(ValueError, match="device"):
        transaction(device=7)


def test_card_variants_rate_spread_and_repeats():
    st = history(
        CardEvent(T0 + k * 24 * HOUR, 30.0, card_subgroup="111", card_type="226", card_country="150") for k in range(4)
    )
    f = card_features(st, CardEvent(T0 + 4 * 24 * HOUR, 30.0, card_subgroup="555", card_type="226", card_country="150"))
    assert f[F["distinct_variants"]] == 1.0 and f[F["new_variant"]] == 1.0
    assert f[F["txn_per_day"]] == pytest.approx(4 / 4.0)  # 4 transactions over the 4 days since first seen
    assert f[F["amount_sd"]] == 0.0 and f[F["same_amount_7d"]] == 4.0 and f[F["amount_vs_last"]] == 1.0
    first = card_features(CardState(), CardEvent(T0, 30.0))
    assert first[F["amount_sd"]] == -1.0 and first[F["txn_per_day"]] == 0.0 and first[F["new_variant"]] == 0.0


def test_processor_signals_and_their_growth_per_card():
    from stream.core.cardsignals import DELTA_SIGNALS, PROVIDER_SIGNALS

    f = card_features(CardState(), CardEvent(T0, 10.0, signals={"C1": 3.0, "V313": 0.5, "unknown": 9.0}))
    assert f[F["sig_C1"]] == 3.0 and f[F["sig_V313"]] == 0.5 and f[F["sig_C2"]] == -1.0  # missing -> -1
    assert all(f[F[f"delta_{s}"]] == 0.0 for s in DELTA_SIGNALS)  # no previous value
    st = advance_card(CardState(), CardEvent(T0, 10.0, signals={"C1": 3.0, "C13": 7.0}))
    f = card_features(st, CardEvent(T0 + HOUR, 10.0, signals={"C1": 5.0}))
    assert f[F["delta_C1"]] == 2.0 and f[F["delta_C13"]] == 0.0  # C13 not sent now
    st2 = advance_card(st, CardEvent(T0 + HOUR, 10.0, signals={"C1": 5.0}))
    assert st2.signals == {"C1": 5.0, "C13": 7.0} and len(PROVIDER_SIGNALS) == len(set(PROVIDER_SIGNALS))


def test_state_written_before_the_new_fields_still_reads():
    old = {
        "n": 2,
        "last_ts": T0,
        "last_amount": 5.0,
        "log_sum": 3.6,
        "log_sq": 6.5,
        "recent": [[T0, 5.0]],
        "emails": [],
        "devices": [],
        "products": ["W"],
        "regions": [],
    }
    st = CardState.from_stored(old)
    assert st.first_ts is None and st.variants == [] and st.signals == {}
    assert st.recent_ts == [T0] and st.recent_amounts == [5.0]
    f = card_features(st, CardEvent(T0 + 2 * 24 * HOUR, 5.0))
    assert f[F["txn_per_day"]] == pytest.approx(1.0)  # first seen falls back to the last time
    assert advance_card(st, CardEvent(T0 + HOUR, 5.0)).first_ts == T0


def test_state_stored_as_the_keyed_object_of_before_loads_the_same():
    """States written before the positional form (a keyed object, ``recent`` as [ts, amount]
    pairs) load to the state they were, so a card keeps its history across the upgrade."""
    st = history(
        CardEvent(T0 + k * 60_000, 1.0 + k, email_domain=f"d{k}.com", signals={"C1": float(k)}) for k in range(5)
    )
    keyed = {
        "n": st.n,
        "last_ts": st.last_ts,
        "last_amount": st.last_amount,
        "log_sum": st.log_sum,
        "log_sq": st.log_sq,
        "recent": [[t, a] for t, a in zip(st.recent_ts, st.recent_amounts)],
        "emails": st.emails,
        "devices": st.devices,
        "products": st.products,
        "regions": st.regions,
        "first_ts": st.first_ts,
        "variants": st.variants,
        "signals": st.signals,
    }
    assert CardState.from_stored(json.loads(json.dumps(keyed))) == st
    assert CardState.from_stored(json.loads(json.dumps(st.stored()))) == st
    assert CardState.from_stored(None) == CardState()


def test_recent_keeps_the_week_in_arrival_order():
    """Times out of order stay in arrival order; only those older than a week before the new
    event leave, with their amounts."""
    st = history([CardEvent(T0 + 3 * HOUR, 1.0), CardEvent(T0, 2.0), CardEvent(T0 + 5 * 24 * HOUR, 3.0)])
    assert st.recent_ts == [T0 + 3 * HOUR, T0, T0 + 5 * 24 * HOUR] and st.recent_amounts == [1.0, 2.0, 3.0]
    later = advance_card(st, CardEvent(T0 + 7 * 24 * HOUR + 2 * HOUR, 4.0))
    assert later.recent_ts == [T0 + 3 * HOUR, T0 + 5 * 24 * HOUR, T0 + 7 * 24 * HOUR + 2 * HOUR]
    assert later.recent_amounts == [1.0, 3.0, 4.0]
    assert st.recent_ts == [T0 + 3 * HOUR, T0, T0 + 5 * 24 * HOUR]  # the input state is left alone


def test_features_never_read_later_events():
    """A row's features are the same whether or not later events (any card) were replayed after it."""
    rng = np.random.default_rng(3)
    events = [
        (
            f"c{rng.integers(4)}",
            CardEvent(
                T0 + i * 5 * 60_000,
                float(rng.integers(1, 300)),
                signals={"C1": float(i // 3), "C13": float(i)},
                card_subgroup=str(i % 2),
            ),
        )
        for i in range(80)
    ]
    full = replay_card_features(events)
    np.testing.assert_array_equal(replay_card_features(events[:50]), full[:50])


def test_contract_signals_and_card_group_fields():
    t = transaction(card_group="13926", card_subgroup="358", signals={"C1": 2, "V313": 0.25})
    assert t.signals == {"C1": 2.0, "V313": 0.25} and t.card_group == "13926"
    f = card_features(CardState(), t)
    assert f[F["card_group"]] == 13926.0 and f[F["card_subgroup"]] == 358.0 and f[F["sig_C1"]] == 2.0
    for bad, why in (
        ([1, 2], "object"),
        ({"C1": "x"}, "finite numbers"),
        ({"C1": True}, "finite numbers"),
        ({"C1": float("nan")}, "finite numbers"),
        ({"": 1}, "1 to 32"),
        ({f"s{i}": 1 for i in range(300)}, "at most"),
    ):
        with pytest.raises(ValueError, match=why):
            transaction(signals=bad)


def test_a_parsed_transaction_is_the_card_event_the_features_read():
    """The card fields are declared once (CardEvent) and the contract extends them: a card field
    added to (or renamed in) CardEvent is parsed from the wire, up to its declared length."""
    from dataclasses import fields

    from stream.core.cardevent import CARD_CODE_FIELDS
    from stream.core.contracts import Transaction

    assert issubclass(Transaction, CardEvent)
    assert [f.name for f in fields(Transaction)][: len(fields(CardEvent))] == [f.name for f in fields(CardEvent)]
    assert set(CARD_CODE_FIELDS) == {f.name for f in fields(CardEvent)} - {"ts", "amount", "signals"}
    for name, longest in CARD_CODE_FIELDS.items():
        assert getattr(transaction(**{name: "7" * longest}), name) == "7" * longest
        with pytest.raises(ValueError, match=f"'{name}' longer than {longest}"):
            transaction(**{name: "7" * (longest + 1)})
    t = transaction(product_code="C", card_subgroup="111", email_domain="Yahoo.com", signals={"C1": 3})
    assert isinstance(t, CardEvent)
    assert (t.product_code, t.card_subgroup, t.email_domain, t.signals) == ("C", "111", "Yahoo.com", {"C1": 3.0})
