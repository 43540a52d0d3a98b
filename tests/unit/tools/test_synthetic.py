"""The synthetic generators: contract-valid, seeded, and with the configured fraud rate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stream.core.contracts import parse_tick, parse_transaction, parse_user_event
from stream.core.features import HIGH_RISK_CATEGORIES
from stream.core.products import PRODUCT_IDS
from stream.tools import synthetic as syn


@pytest.fixture(scope="module")
def records():
    return syn.generate_transactions(n_accounts=400, days=20, fraud_rate=0.02, seed=11)


def test_transactions_pass_the_contract(records):
    for r in records:
        t = parse_transaction(r)
        assert t.account_id == r["account_id"] and t.amount > 0
    assert {r["merchant_category"] for r in records} >= set(HIGH_RISK_CATEGORIES)


def test_transactions_are_time_ordered_and_unique(records):
    ts = [r["ts"] for r in records]
    assert ts == sorted(ts)
    assert len({r["event_id"] for r in records}) == len(records)


def test_seeded_and_deterministic():
    a = syn.generate_transactions(n_accounts=50, days=5, seed=3)
    b = syn.generate_transactions(n_accounts=50, days=5, seed=3)
    c = syn.generate_transactions(n_accounts=50, days=5, seed=4)
    assert a == b
    assert a != c


def test_fraud_rate_as_configured(records):
    y = syn.fraud_labels(records)
    assert abs(y.mean() - 0.02) < 0.003
    zero = syn.generate_transactions(n_accounts=100, days=5, fraud_rate=0.0, seed=1)
    assert syn.fraud_labels(zero).sum() == 0


def test_fraud_looks_like_account_takeover(records):
    y = syn.fraud_labels(records).astype(bool)
    night = np.array([(r["ts"] // 3_600_000) % 24 < 6 for r in records])
    risky = np.array([r["merchant_category"] in HIGH_RISK_CATEGORIES for r in records])
    ecom_atm = np.array([r["channel"] in ("ecom", "atm") for r in records])
    assert night[y].mean() > 2 * night[~y].mean()
    assert risky[y].mean() > 3 * risky[~y].mean()
    assert ecom_atm[y].mean() > ecom_atm[~y].mean()


def test_labels_can_be_left_out(records):
    plain = syn.generate_transactions(n_accounts=20, days=2, seed=5, with_labels=False)
    assert all("is_fraud" not in r for r in plain)
    assert all("is_fraud" not in r for r in syn.strip_labels(records[:10]))
    rows = list(syn.replay_rows(records[:3]))
    assert rows[0] == (
        records[0]["account_id"],
        records[0]["ts"],
        records[0]["amount"],
        records[0]["country"],
        records[0]["merchant_category"],
        records[0]["channel"],
    )


def test_endless_transaction_stream_is_ordered():
    recs = list(itertools.islice(syn.transaction_stream(n_accounts=30, seed=2), 500))
    assert [r["ts"] for r in recs] == sorted(r["ts"] for r in recs)
    for r in recs:
        parse_transaction(r)


def test_ticks_are_a_valid_random_walk():
    ticks = list(itertools.islice(syn.tick_stream(("A", "B"), seed=1), 2000))
    for t in ticks:
        parse_tick(t)
    a = np.array([t["price"] for t in ticks if t["symbol"] == "A"])
    r = np.diff(np.log(a))
    assert 0.0002 < r.std() < 0.001
    assert ticks == list(itertools.islice(syn.tick_stream(("A", "B"), seed=1), 2000))


def test_user_events_pass_the_contract():
    evs = list(itertools.islice(syn.user_event_stream(n_users=50, seed=1), 1000))
    for e in evs:
        ev = parse_user_event(e)
        assert ev.product_id in PRODUCT_IDS
    assert [e["ts"] for e in evs] == sorted(e["ts"] for e in evs)


def test_synthetic_does_not_import_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys, stream.tools.synthetic; "
        "bad = [m for m in ('pandas', 'tensorflow', 'sklearn', 'onnx') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
