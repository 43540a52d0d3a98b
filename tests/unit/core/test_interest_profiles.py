"""Recent interest, live attributes and card spend: the pure core behind issue 12."""

from __future__ import annotations

import numpy as np
import pytest

from stream.core.contracts import ContractError, parse_transaction, parse_user_event
from stream.core.interest import ACTION_STRENGTH, interest_vector, recency_weights
from stream.core.products import BY_ID, CUSTOMER_ATTRIBUTES, PRODUCT_IDS, PRODUCT_INDEX
from stream.core.profiles import (
    RECENT_CAP,
    UserProfile,
    apply_event,
    attribute_vector,
    pack_snapshot,
    unpack_snapshot,
)
from stream.core.recommend import reason_text
from stream.core.records import SourceRecord
from stream.core.spend import SPEND_PRODUCTS, spend_event, spend_record

NAMES = {p: BY_ID[p].name for p in PRODUCT_IDS}
TXN = {
    "event_id": "e1",
    "account_id": "acct-1",
    "ts": 1_700_000_000_000,
    "amount": 50.0,
    "currency": "EUR",
    "merchant_category": "fuel",
    "channel": "pos",
    "country": "DE",
}


def test_recency_weights_decay_by_event_age_and_scale_by_action():
    w = recency_weights(["view", "apply", "click"], half_life=1.0)
    np.testing.assert_allclose(w, [1.0 * 0.25, 4.0 * 0.5, 2.0 * 1.0])
    np.testing.assert_allclose(recency_weights(["view", "view"], half_life=0), [1.0, 1.0])  # order-blind
    assert recency_weights(["buy"], 2.0)[0] == 0.0  # not an interest action


def test_interest_vector_sums_repeats_and_ignores_unknown_products():
    recent = [["car", "view", ""], ["boat", "view", ""], ["car", "click", ""], ["nope", "view", ""]]
    v = interest_vector(recent, PRODUCT_INDEX, len(PRODUCT_IDS), half_life=2.0)
    assert v.dtype == np.float32 and v.shape == (22,)
    # ages (newest = 0): car view 3, boat view 2, car click 1, unknown view 0
    assert v[PRODUCT_INDEX["car"]] == pytest.approx(1.0 * 0.5**1.5 + 2.0 * 0.5**0.5)
    assert v[PRODUCT_INDEX["boat"]] == pytest.approx(0.5**1.0)
    assert v.sum() == pytest.approx(v[PRODUCT_INDEX["car"]] + v[PRODUCT_INDEX["boat"]])


def test_profile_keeps_actions_caps_history_and_reads_old_snapshots():
    p = UserProfile()
    for i in range(RECENT_CAP + 3):
        p = apply_event(p, PRODUCT_IDS[i % 5], "view" if i % 2 else "click")
    p = apply_event(p, "car", "buy")
    assert p.holdings == ["car"] and len(p.recent) == RECENT_CAP
    assert p.recent[-1][:2] == [PRODUCT_IDS[(RECENT_CAP + 2) % 5], "view" if (RECENT_CAP + 2) % 2 else "click"]
    p = apply_event(p, "boat", "spend", note="5551")
    assert p.recent[-1] == ["boat", "spend", "5551"]
    assert UserProfile.from_dict(p.to_dict()) == p
    old = UserProfile.from_dict({"holdings": ["fire"], "recent": ["car", "boat"]})  # pre-issue-12 snapshot
    assert old.recent == [["car", "view", ""], ["boat", "view", ""]] and old.attributes == {}


def test_live_attributes_override_means_only_where_known():
    means = np.arange(len(CUSTOMER_ATTRIBUTES), dtype=np.float32)
    p = apply_event(UserProfile(), "car", "view", attributes={"MOSTYPE": 33.0})
    p = apply_event(p, "car", "view", attributes={"MKOOPKLA": 7.0})
    row = attribute_vector(p.attributes, means)
    assert row[0] == 33.0 and row[CUSTOMER_ATTRIBUTES.index("MKOOPKLA")] == 7.0
    assert (
        np.delete(row, [0, CUSTOMER_ATTRIBUTES.index("MKOOPKLA")])
        == np.delete(means, [0, CUSTOMER_ATTRIBUTES.index("MKOOPKLA")])
    ).all()


def test_user_event_attributes_contract():
    base = {"user_id": "u", "ts": 1_700_000_000_000, "product_id": "car", "action": "view"}
    assert parse_user_event({**base, "attributes": {"MOSTYPE": 3}}).attributes == {"MOSTYPE": 3.0}
    with pytest.raises(ContractError, match="unknown attributes"):
        parse_user_event({**base, "attributes": {"income": 3}})
    with pytest.raises(ContractError, match="must be a number"):
        parse_user_event({**base, "attributes": {"MOSTYPE": "high"}})
    with pytest.raises(ContractError, match="must be an object"):
        parse_user_event({**base, "attributes": [1, 2]})


def test_transactions_link_to_a_user_only_next_to_an_account():
    assert parse_transaction({**TXN, "user_id": "u7"}).user_id == "u7"
    bare = {k: v for k, v in TXN.items() if k != "account_id"}
    t = parse_transaction({**bare, "user_id": "u7"})  # user_id alone *is* the account id
    assert t.account_id == "u7" and t.user_id is None
    assert spend_event(t) is None


def test_spend_event_for_mapped_categories_only():
    ev = spend_event(parse_transaction({**TXN, "user_id": "u7"}))
    assert ev["user_id"] == "u7" and ev["product_id"] == "car" and ev["action"] == "spend"
    assert ev["event_id"] == "txn:e1" and ev["merchant_category"] == "fuel"
    assert parse_user_event(ev).product_id == "car"  # a valid user event for the recommend job
    assert spend_event(parse_transaction({**TXN, "user_id": "u7", "merchant_category": "grocery"})) is None
    assert spend_event(parse_transaction(TXN)) is None  # no linked user
    assert {p for p, _ in SPEND_PRODUCTS.values()} <= set(PRODUCT_IDS)


def test_spend_record_is_keyed_by_user_and_joins_the_source_transaction():
    src = SourceRecord("transactions", 3, 41, b"acct-1", b"{}")
    rec = spend_record("user-events", src, parse_transaction({**TXN, "user_id": "u7"}))
    assert rec.topic == "user-events" and rec.key == b"u7" and rec.by_key and rec.partition == 3


def test_reason_texts():
    n = len(PRODUCT_IDS)
    car, boat = PRODUCT_INDEX["car"], PRODUCT_INDEX["boat"]
    recent = [["boat", "view", ""], ["car", "spend", "fuel"], ["caravan", "spend", "7033"]]
    assert reason_text(boat, car, recent, PRODUCT_IDS, NAMES, False) == "customers holding Boat policy often hold this"
    assert reason_text(n + boat, boat, recent, PRODUCT_IDS, NAMES, False) == "because you viewed Boat policy"
    assert reason_text(n + car, car, recent, PRODUCT_IDS, NAMES, False) == "because you spent on fuel (Car policy)"
    caravan = PRODUCT_INDEX["caravan"]
    assert (
        reason_text(n + caravan, caravan, recent, PRODUCT_IDS, NAMES, False)
        == "because you spent on a campground (Mobile home (caravan) policy)"
    )
    assert reason_text(n + boat, car, recent, PRODUCT_IDS, NAMES, False).startswith("because you viewed Boat policy;")
    assert reason_text(2 * n, car, recent, PRODUCT_IDS, NAMES, True) == "popular with customers like you"
    assert set(ACTION_STRENGTH) == {"view", "click", "apply", "spend"}


def test_snapshots_are_compact_and_round_trip():
    import orjson

    p = apply_event(
        apply_event(apply_event(UserProfile(), "private_liability", "buy"), "boat", "spend", "5551"), "fire", "buy"
    )
    p = apply_event(p, "fire", "click")
    assert p.holdings == ["fire", "private_liability"]  # sorted, not catalogue order: replays must match
    snap = pack_snapshot(p)
    assert unpack_snapshot(orjson.loads(orjson.dumps(snap))) == p
    assert len(orjson.dumps(snap)) < 40
    q = apply_event(p, "life", "view", attributes={"MOSTYPE": 3.0})
    assert unpack_snapshot(orjson.loads(orjson.dumps(pack_snapshot(q)))) == q
    assert unpack_snapshot(["car", "fire"]) == UserProfile(["car", "fire"], [], {})  # main's older snapshots
    assert unpack_snapshot(p.to_dict()) == p
    assert unpack_snapshot(None) == UserProfile()
