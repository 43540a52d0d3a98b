"""Static tables of the card features (stream.core.cardtables): smoothing, unseen values,
out-of-fold rates that never read a row's own label, the JSON form the model card carries, and
the served row (``card_features`` with the tables) ending in the table features."""

from __future__ import annotations

import json
import math

import pytest

from stream.core.cardrisk import CARD_FEATURES, CardEvent, CardState, card_features, replay_card_features
from stream.core.cardtables import (
    MIN_ROWS,
    SMOOTHING,
    TABLE_FEATURES,
    TABLE_KEYS,
    CardTables,
    fit_tables,
    out_of_fold,
    table_features,
    table_keys,
)

T0 = 1_512_000_000_000


def ev(**kw) -> CardEvent:
    return CardEvent(T0, 10.0, **kw)


A = ev(card_group="1001", billing_region="330", email_domain="Gmail.com", device="Windows", product_code="w")
B = ev(card_group="2002", email_domain="yahoo.com", product_code="C")


def test_keys_come_from_the_event_like_the_card_id():
    k = dict(zip(TABLE_KEYS, table_keys(A)))
    assert k == {
        "card_group": "1001",
        "region": "330",
        "email": "gmail.com",  # normalised as the card state normalises it
        "device": "Windows",
        "product": "W",
    }
    assert dict(zip(TABLE_KEYS, table_keys(B)))["region"] == ""  # a missing field: an empty slot


def test_rare_values_are_not_published():
    """A value needs MIN_ROWS fitting rows to enter a table (the tables ship in the repository;
    per-record or per-card aggregates of the IEEE-CIS rows may not): rarer ones read as unseen."""
    keys = [table_keys(A)] * MIN_ROWS + [table_keys(B)] * (MIN_ROWS - 1)
    t = fit_tables(keys, [1] + [0] * (2 * MIN_ROWS - 2))
    assert "1001" in t.tables["card_group"] and "2002" not in t.tables["card_group"]
    assert "card_id" not in t.tables  # no per-card table at all
    f = dict(zip(TABLE_FEATURES, table_features(t, B)))
    assert f["card_group_fraud_rate"] == t.prior and f["card_group_log_count"] == 0.0
    oof = out_of_fold(keys, [1] + [0] * (2 * MIN_ROWS - 2), folds=2)
    count = TABLE_FEATURES.index("card_group_log_count")
    assert oof[-1][count] == 0.0 and oof[0][count] == pytest.approx(math.log1p(MIN_ROWS), abs=1e-6)


def test_smoothed_rates_counts_and_unseen_values():
    keys = [table_keys(A)] * 4 + [table_keys(B)] * 6
    labels = [1, 1, 0, 0] + [0] * 6
    t = fit_tables(keys, labels, min_rows=1)
    prior = 0.2
    assert t.prior == pytest.approx(prior)
    rate, count = t.tables["card_group"]["1001"]
    assert rate == pytest.approx((2 + SMOOTHING * prior) / (4 + SMOOTHING), abs=1e-6)
    assert count == pytest.approx(math.log1p(4), abs=1e-6)
    f = dict(zip(TABLE_FEATURES, table_features(t, A)))
    assert f["card_group_fraud_rate"] == pytest.approx(rate) and f["card_group_log_count"] == pytest.approx(count)
    unseen = dict(zip(TABLE_FEATURES, table_features(t, ev(card_group="9", device="new"))))
    assert unseen["card_group_fraud_rate"] == t.prior and unseen["device_log_count"] == 0.0
    assert table_features(CardTables(), A) == [0.0, 0.0] * len(TABLE_KEYS)  # no tables: all unseen


def test_out_of_fold_rates_never_read_the_rows_own_label():
    keys = [table_keys(A)] * 10
    labels = [0] * 10
    base = out_of_fold(keys, labels, folds=5, min_rows=1)
    flipped = out_of_fold(keys, [1] + [0] * 9, folds=5, min_rows=1)
    rate = TABLE_FEATURES.index("card_group_fraud_rate")
    assert flipped[0][rate] == base[0][rate] and flipped[1][rate] == base[1][rate]  # its own block: unchanged
    assert all(flipped[i][rate] > base[i][rate] for i in range(2, 10))  # the other blocks see it
    count = TABLE_FEATURES.index("card_group_log_count")
    assert [r[count] for r in base] == pytest.approx([math.log1p(10)] * 10)  # counts of the whole table, unlabelled


def test_tables_round_trip_through_json_and_reach_the_served_row():
    t = fit_tables([table_keys(A), table_keys(B)], [1, 0], min_rows=1)
    back = CardTables.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t and CardTables.from_dict(None) == CardTables()
    row = card_features(CardState(), A, back)
    assert len(row) == len(CARD_FEATURES) and CARD_FEATURES[-len(TABLE_FEATURES) :] == TABLE_FEATURES
    assert row[-len(TABLE_FEATURES) :] == table_features(t, A)
    # the replay (training) takes the card's JSON form as the worker reads it from the manifest
    x = replay_card_features([("1001-330", A), ("2002-", B)], t.to_dict())
    assert x[0, -len(TABLE_FEATURES) :].tolist() == pytest.approx(table_features(t, A))
    assert x[1, -len(TABLE_FEATURES) :].tolist() == pytest.approx(table_features(t, B))
