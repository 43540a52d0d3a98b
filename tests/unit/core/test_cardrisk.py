"""Card risk features (stream.core.cardrisk): behaviour on hand-made histories, state round trip,
and the contract path (old records without the card fields still featurise)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stream.core.cardrisk import (
    CARD_FEATURE_LABELS, CARD_FEATURES, EMAIL_GROUPS, CardEvent, CardState, advance_card, card_features, card_id,
    device_family, email_group, replay_card_features,
)
from stream.core.contracts import parse_transaction

T0 = 1_512_000_000_000 + 12 * 3_600_000
HOUR = 3_600_000
F = {n: i for i, n in enumerate(CARD_FEATURES)}


def ev(ts, amount, **kw):
    return CardEvent(ts, amount, **kw)


def test_names_labels_and_lengths_line_up():
    assert len(CARD_FEATURES) == len(set(CARD_FEATURES)) and set(CARD_FEATURE_LABELS) == set(CARD_FEATURES)
    assert len(card_features(CardState(), ev(T0, 10.0))) == len(CARD_FEATURES)


def test_first_transaction_has_no_history():
    f = card_features(CardState(), ev(T0, 10.5, product_code="c", email_domain="Gmail.com", device="Windows"))
    assert f[F["first_transaction"]] == 1.0
    assert f[F["log_secs_since_last"]] == -1.0 and f[F["txn_count_24h"]] == 0.0
    assert f[F["product_C"]] == 1.0 and sum(f[F[f"product_{p}"]] for p in "WCRHS") == 1.0
    assert f[F["amount_cents"]] == pytest.approx(0.5) and f[F["hour_of_day"]] == 12.0
    assert f[F["email_group"]] == EMAIL_GROUPS.index("gmail") and f[F["device_family"]] == 1.0
    assert f[F["new_email"]] == 0.0                 # nothing is "new" on a card without history


def test_history_velocity_novelty_and_amount():
    st = CardState()
    for k in range(5):
        st = advance_card(st, ev(T0 + k * 10 * 60_000, 20.0, email_domain="gmail.com", device="iOS Device",
                                 product_code="W", billing_region="315"))
    e = ev(T0 + 65 * 60_000, 900.0, email_domain="protonmail.com", device="Windows", product_code="W", billing_region="315")
    f = card_features(st, e)
    assert f[F["first_transaction"]] == 0.0
    assert f[F["txn_count_1h"]] == 4.0 and f[F["txn_count_24h"]] == 5.0 and f[F["txn_count_7d"]] == 5.0
    assert f[F["log_secs_since_last"]] == pytest.approx(math.log1p(25 * 60))
    assert f[F["amount_z"]] > 5 and f[F["amount_ratio"]] == pytest.approx(900 / 20, rel=1e-6)
    assert f[F["new_email"]] == 1.0 and f[F["new_device"]] == 1.0 and f[F["new_product"]] == 0.0
    assert f[F["new_region"]] == 0.0 and f[F["distinct_emails"]] == 1.0
    assert f[F["same_amount_as_last"]] == 0.0
    assert card_features(st, ev(T0 + 2 * HOUR, 20.0))[F["same_amount_as_last"]] == 1.0
    late = card_features(st, ev(T0 + 8 * 24 * HOUR, 20.0))
    assert late[F["txn_count_7d"]] == 0.0 and late[F["txn_count_24h"]] == 0.0


def test_state_json_round_trip_and_purity():
    st = CardState()
    for k in range(70):                      # more than the caps
        st = advance_card(st, ev(T0 + k * 60_000, 1.0 + k, email_domain=f"d{k}.com", device=f"dev{k}"))
    assert len(st.recent) <= 48 and len(st.emails) <= 8 and st.n == 70
    back = CardState.from_dict(json.loads(json.dumps(st.to_dict())))
    e = ev(T0 + 71 * 60_000, 5.0, email_domain="x.com")
    assert card_features(back, e) == card_features(st, e)
    before = st.to_dict()
    advance_card(st, e)
    assert st.to_dict() == before


def test_replay_equals_step_by_step():
    rng = np.random.default_rng(1)
    events = [(f"c{rng.integers(3)}", ev(T0 + i * 7 * 60_000, float(rng.integers(1, 500)), product_code="WCR"[i % 3]))
              for i in range(60)]
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
    base = {"event_id": "e1", "account_id": "13926--150-142-315-87", "ts": T0, "amount": 68.5, "currency": "USD",
            "merchant_category": "ecommerce", "channel": "ecom", "country": "US"}
    old = parse_transaction(base)
    assert old.product_code is None and old.device is None
    assert len(card_features(CardState(), CardEvent.of(old))) == len(CARD_FEATURES)
    new = parse_transaction({**base, "product_code": "W", "card_type": "142", "device": "Windows",
                             "email_domain": "gmail.com", "billing_region": "315"})
    f = card_features(CardState(), CardEvent.of(new))
    assert f[F["product_W"]] == 1.0 and f[F["card_type"]] == 142.0 and f[F["billing_region"]] == 315.0
    with pytest.raises(ValueError, match="device"):
        parse_transaction({**base, "device": 7})
