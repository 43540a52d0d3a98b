"""The transaction state machine (stream.core.features), feature by feature.

Train/serve parity (each published score equals the model on ``replay_features`` of the same
transactions) is checked end to end through Kafka and Redis in
``tests/integration/test_engine_e2e.py``, not here against a copy of the implementation."""

from __future__ import annotations

import json
import math

import pytest

from stream.core.features import (
    HIGH_RISK_CATEGORIES,
    TXN_FEATURE_LABELS,
    TXN_FEATURES,
    AccountState,
    advance,
    txn_features,
)

T0 = 1_704_067_200_000 + 12 * 3_600_000  # 2024-01-01 12:00 UTC
MIN = 60_000
F = {name: i for i, name in enumerate(TXN_FEATURES)}


def run(history):
    """Apply (ts, amount, country, category) tuples to a fresh state."""
    st = AccountState()
    for ts, amount, country, category in history:
        st = advance(st, ts, amount, country, category)
    return st


def test_feature_names_and_labels_line_up():
    assert len(TXN_FEATURES) == len(set(TXN_FEATURES)) == 14
    assert set(TXN_FEATURE_LABELS) == set(TXN_FEATURES)
    f = txn_features(AccountState(), T0, 10.0, "GB", "grocery", "pos")
    assert len(f) == len(TXN_FEATURES)


def test_first_transaction():
    f = txn_features(AccountState(), T0, 10.0, "GB", "grocery", "pos")
    assert f[F["first_transaction"]] == 1.0
    assert f[F["new_country"]] == 0.0 and f[F["country_changed"]] == 0.0 and f[F["new_merchant_category"]] == 0.0
    assert f[F["txn_count_1h"]] == 0.0 and f[F["txn_count_24h"]] == 0.0
    assert f[F["log_secs_since_last"]] == 0.0
    assert f[F["log_amount"]] == pytest.approx(math.log1p(10.0))


def test_velocity_counts_by_horizon():
    hist = [
        (T0 - 30 * 3_600_000, 5.0, "GB", "grocery"),  # older than 24h: dropped
        (T0 - 20 * 3_600_000, 5.0, "GB", "grocery"),  # within 24h
        (T0 - 2 * 3_600_000, 5.0, "GB", "grocery"),  # within 24h
        (T0 - 30 * MIN, 5.0, "GB", "grocery"),  # within 1h
        (T0 - 1 * MIN, 5.0, "GB", "grocery"),
    ]  # within 1h
    st = run(hist)
    f = txn_features(st, T0, 5.0, "GB", "grocery", "pos")
    assert f[F["txn_count_1h"]] == 2.0
    assert f[F["txn_count_24h"]] == 4.0
    assert f[F["log_secs_since_last"]] == pytest.approx(math.log1p(60.0))
    assert len(st.recent) == 4  # advance prunes beyond 24h


def test_spend_ratio_uses_24h_spend_and_usual_amount():
    st = run([(T0 - 3_600_000, 100.0, "GB", "grocery")])
    f = txn_features(st, T0, 50.0, "GB", "grocery", "pos")
    usual = math.expm1(st.log_mean)
    assert usual == pytest.approx(100.0)
    assert f[F["spend_24h_ratio"]] == pytest.approx(math.log1p(150.0 / usual))


def test_new_country_and_country_changed():
    st = run([(T0 - 3 * MIN, 20.0, "GB", "grocery"), (T0 - 2 * MIN, 20.0, "FR", "grocery")])
    back_home = txn_features(st, T0, 20.0, "GB", "grocery", "pos")
    assert back_home[F["new_country"]] == 0.0 and back_home[F["country_changed"]] == 1.0
    abroad = txn_features(st, T0, 20.0, "NG", "grocery", "pos")
    assert abroad[F["new_country"]] == 1.0 and abroad[F["country_changed"]] == 1.0
    same = txn_features(st, T0, 20.0, "FR", "grocery", "pos")
    assert same[F["new_country"]] == 0.0 and same[F["country_changed"]] == 0.0


def test_country_and_category_memory_is_capped():
    hist = [
        (T0 + i * MIN, 10.0, c, f"cat{i}") for i, c in enumerate(["AA", "BB", "CC", "DD", "EE", "FF", "GG", "HH", "II"])
    ]
    st = run(hist)
    assert len(st.countries) == 8 and "AA" not in st.countries
    f = txn_features(st, T0 + 60 * MIN, 10.0, "AA", "cat8", "pos")
    assert f[F["new_country"]] == 1.0  # forgotten beyond the cap
    assert f[F["new_merchant_category"]] == 0.0


def test_ewma_of_log_amount():
    st = run([(T0, 100.0, "GB", "grocery")])
    assert st.log_mean == pytest.approx(math.log1p(100.0))
    st2 = advance(st, T0 + MIN, 1000.0, "GB", "grocery")
    diff = math.log1p(1000.0) - math.log1p(100.0)
    assert st2.log_mean == pytest.approx(math.log1p(100.0) + 0.1 * diff)
    assert st2.log_var == pytest.approx(0.9 * (1.0 + 0.1 * diff * diff))
    f = txn_features(st2, T0 + 2 * MIN, 1000.0, "GB", "grocery", "pos")
    expected_z = (math.log1p(1000.0) - st2.log_mean) / math.sqrt(st2.log_var + 1e-6)
    assert f[F["amount_z"]] == pytest.approx(expected_z)
    assert st.n == 1 and st.log_mean == pytest.approx(math.log1p(100.0))  # advance did not mutate


def test_amount_z_is_clipped():
    st = run([(T0 + i * MIN, 1.0, "GB", "grocery") for i in range(50)])
    f = txn_features(st, T0 + 60 * MIN, 1e9, "GB", "grocery", "pos")
    assert f[F["amount_z"]] == 10.0


def test_flags_channel_night_risk():
    st = run([(T0, 10.0, "GB", "grocery")])
    night = T0 - 9 * 3_600_000  # 03:00 UTC
    f = txn_features(st, night + 86_400_000, 10.0, "GB", "gambling", "atm")
    assert f[F["channel_atm"]] == 1.0 and f[F["channel_ecom"]] == 0.0
    assert f[F["night_time_utc"]] == 1.0
    assert f[F["high_risk_category"]] == 1.0 and "gambling" in HIGH_RISK_CATEGORIES
    assert f[F["new_merchant_category"]] == 1.0
    g = txn_features(st, T0 + MIN, 10.0, "GB", "grocery", "ecom")
    assert g[F["channel_ecom"]] == 1.0 and g[F["night_time_utc"]] == 0.0 and g[F["high_risk_category"]] == 0.0


def test_state_round_trips_through_json():
    st = run(
        [
            (T0 + i * MIN, 10.0 + i, c, k)
            for i, (c, k) in enumerate([("GB", "grocery"), ("FR", "crypto"), ("GB", "fuel")])
        ]
    )
    back = AccountState.from_dict(json.loads(json.dumps(st.to_dict())))
    assert back == st
    f1 = txn_features(st, T0 + 10 * MIN, 42.0, "DE", "fuel", "ecom")
    f2 = txn_features(back, T0 + 10 * MIN, 42.0, "DE", "fuel", "ecom")
    assert f1 == f2
    assert AccountState.from_dict(None) == AccountState()
    assert AccountState.from_dict({}) == AccountState()
