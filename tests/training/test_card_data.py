"""Risk on real card data (IEEE-CIS, ULB): loaders (rows, label rate, time order), records the
stream reads, the card models recomputed from their export, tables without a row's own label, the
chronological split, and features that do not look ahead.

Apart from tests/training/credit_risk/ (credit sets, synthetic transactions) because these read the
real wheels from the shared data cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training import risk
from training.export import onnx_run
from training.job import TrainContext
from training.quality import QualityLog

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def ieee():
    """The real IEEE-CIS rows from the shared data cache (fetched once with pip, sha256-checked)."""
    from training.data import fraud

    return fraud.load_ieee_cis(None, QualityLog())


def test_ieee_cis_loader_rows_label_rate_and_time_order(ieee):
    from stream.core.manifest import sha256_file
    from stream.tools.cardfeed import IEEE_CIS
    from training.data import fraud

    assert sha256_file(fraud.wheel_path(IEEE_CIS)) == IEEE_CIS.sha256
    assert len(ieee) == 590_540 == ieee["TransactionID"].nunique()
    assert ieee["isFraud"].mean() == pytest.approx(0.0350, abs=0.0005)
    dt = ieee["TransactionDT"].to_numpy()
    assert (np.diff(dt) >= 0).all() and 180 < (dt[-1] - dt[0]) / 86400 < 184
    assert {"card1", "addr1", "ProductCD", "DeviceInfo", "C1", "V13"} <= set(ieee.columns)


def test_ulb_loader_rows_label_rate_and_time_order():
    from training.data import fraud

    u = fraud.load_ulb(None, QualityLog())
    assert len(u) == 284_807 and int(u["Class"].sum()) == 492
    t = u["Time"].to_numpy()
    assert (np.diff(t) >= 0).all() and t[-1] <= 2 * 86400
    assert [f"V{i}" for i in range(1, 29)] == [c for c in u.columns if c.startswith("V")]


def test_ieee_rows_map_to_valid_records_and_the_feed_reads_the_same(ieee):
    from stream.core.cardrisk import replay_card_features
    from stream.core.contracts import parse_transaction
    from stream.tools.cardfeed import IEEE_CIS
    from stream.tools.cardfeed import ieee_records as feed_records
    from training import risk_cards
    from training.data import fraud

    head = ieee.iloc[:3000]
    recs = risk_cards.ieee_records(head)
    assert recs == list(feed_records(fraud.wheel_path(IEEE_CIS), 0, 3000))  # one mapping, CSV or Parquet
    parsed = [parse_transaction(r) for r in recs]
    assert {t.channel for t in parsed} == {"ecom"} and all(t.product_code in "WCRHS" for t in parsed)
    assert sum(t.device is not None for t in parsed) == int(head["DeviceInfo"].notna().sum())
    x = risk_cards.served_features(recs)
    want = replay_card_features((t.account_id, t) for t in parsed)
    np.testing.assert_array_equal(x, want)
    assert x.shape == (3000, len(risk_cards.CARD_FEATURES)) and np.isfinite(x).all()


def test_card_risk_small_recomputes_from_the_exported_models(ieee, tmp_path):
    """The report's hold-out figures are the exported file run on features the *stream's* code
    computes with the exported tables (train/serve parity on real rows, tables included)."""
    from stream.core.cardrisk import CARD_FEATURES
    from training import risk_cards

    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=3)
    cards, rep, served = risk_cards.train_card_risk(ctx, ieee, share=0.03, n_boot=20)
    assert {c.name for c in cards} == {"card_risk_logistic", "card_risk_gbm"} and served in {c.name for c in cards}
    assert {"gbm_previous_features", "gbm_stream_no_tables", "gbm_stream_only", "reference_gbm_plus_all_v"} <= set(
        rep["models"]
    )
    df = risk_cards.card_sample(ieee, 0.03)
    y = df["isFraud"].to_numpy()
    recs = risk_cards.ieee_records(df)
    dt = df["TransactionDT"].to_numpy()
    tr, va, te = risk_cards.chrono_split(len(y), t=dt)
    assert rep["rows_used"] == len(y) and rep["split"]["holdout_frauds"] == int(y[te].sum())
    assert rep["split"]["train_last_dt"] < rep["split"]["holdout_first_dt"] == dt[te].min()
    tables = cards[0].extra["tables"]
    assert tables == cards[1].extra["tables"] and json.loads(json.dumps(tables)) == tables
    x = risk_cards.served_features(recs, tables=tables)  # what the worker computes, exported tables
    fit = slice(0, va.stop)
    legit = risk_cards.with_tables(x, risk_cards.card_events(recs), y, fit, te)[0][fit][y[fit] == 0]
    for c in cards:
        assert c.task == "transaction_risk" and c.features == list(CARD_FEATURES)
        p_te = onnx_run(tmp_path / c.file, {"features": x[te]})[0][:, 0]
        m = rep["models"][c.name]
        assert m["auc"] == pytest.approx(risk.auc(y[te], p_te), abs=1e-3)  # figures = the exported file
        assert m["pr_auc"] == pytest.approx(risk.pr_auc(y[te], p_te), abs=1e-3)
        assert m["recall_at_1pct"] == pytest.approx(risk.recall_at_budget(y[te], p_te, 0.01), abs=0.02)
        assert c.threshold == m["at_threshold"]["threshold"]
        assert m["at_threshold"]["alert_rate"] == pytest.approx(float((p_te >= c.threshold).mean()), abs=1e-3)
        assert m["auc_ci95"][0] <= m["auc"] <= m["auc_ci95"][1]
        np.testing.assert_allclose(c.baseline, legit.mean(axis=0), rtol=1e-4, atol=1e-5)  # fit rows: out-of-fold
    assert rep["models"][served]["val_pr_auc"] == max(
        rep["models"][n]["val_pr_auc"] for n in ("card_risk_logistic", "card_risk_gbm")
    )
    best = rep["models"][served]["auc"]
    assert best > 0.7 and best > max(rep["models"][r]["auc"] for r in ("rule_amount_z", "rule_velocity_24h"))


def test_fitting_rows_get_table_rates_without_their_own_label(ieee):
    """Out-of-fold tables on real rows: flipping one fitting row's label leaves its own rates
    unchanged (and moves other blocks' rates), and the scored rows use the tables of all fitting rows."""
    from stream.core.cardtables import TABLE_FEATURES, fit_tables, table_features, table_keys
    from training import risk_cards

    df = ieee.iloc[:5000]
    recs = risk_cards.ieee_records(df)
    events = risk_cards.card_events(recs)
    y = df["isFraud"].to_numpy().copy()
    x0 = risk_cards.served_features(recs)
    fit, score = slice(0, 4000), slice(4000, 5000)
    rate = [risk_cards.CARD_FEATURES.index(f) for f in TABLE_FEATURES if f.endswith("_fraud_rate")]
    a, tables = risk_cards.with_tables(x0, events, y, fit, score)
    i = 100  # in the first of the five time blocks
    y[i] = 1 - y[i]
    b, _ = risk_cards.with_tables(x0, events, y, fit, score)
    np.testing.assert_array_equal(a[i, rate], b[i, rate])
    assert (a[800:4000, rate] != b[800:4000, rate]).any()  # the other blocks do see it
    keys = [table_keys(e) for _, e in events[:4000]]
    want = fit_tables(keys, [int(v) for v in df["isFraud"].to_numpy()[:4000]])
    assert tables == want
    np.testing.assert_allclose(a[4000:, -len(TABLE_FEATURES) :], [table_features(want, e) for _, e in events[4000:]])
    np.testing.assert_array_equal(a[:, : -len(TABLE_FEATURES)], x0[:, : -len(TABLE_FEATURES)])


def test_chrono_split_parts_are_strictly_later():
    from training.risk_cards import chrono_split

    t = np.array([0, 1, 1, 1, 2, 3, 3, 3, 3, 4])
    tr, va, te = chrono_split(len(t), 0.3, 0.4, t=t)  # the 30% / 70% cuts fall inside runs of equal times
    assert t[tr].max() < t[va].min() and t[va].max() < t[te].min()
    assert (tr.stop, va.stop) == (4, 9) and chrono_split(10, 0.3, 0.4) == (slice(0, 3), slice(3, 7), slice(7, 10))


def test_real_rows_features_do_not_depend_on_later_rows(ieee):
    """Training's replay on real rows: the first rows' features are the same with or without the
    rows after them (no aggregate peeks ahead, so the hold-out cannot leak into training rows)."""
    from training import risk_cards

    recs = risk_cards.ieee_records(ieee.iloc[:6000])
    full = risk_cards.served_features(recs)
    np.testing.assert_array_equal(risk_cards.served_features(recs[:4000]), full[:4000])
    assert (full[:, risk_cards.CARD_FEATURES.index("sig_C1")] >= 0).mean() > 0.99  # the signals arrive


def test_recall_at_budget():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1])
    p = np.arange(10)[::-1] / 10.0
    assert risk.recall_at_budget(y, p, 0.1) == pytest.approx(1 / 3)
    assert risk.recall_at_budget(y, p, 0.4) == pytest.approx(2 / 3)


def test_ulb_benchmark_small():
    from training.data import fraud
    from training.risk_ulb import ulb_benchmark

    u = fraud.load_ulb(None, QualityLog()).iloc[:80_000]
    rep = ulb_benchmark(TrainContext(out_dir=Path("."), cache_dir=Path("."), seed=3), u, n_boot=20)
    assert rep["rows"] == 80_000 and rep["test_frauds"] == int(u["Class"].iloc[64_000:].sum())
    for m in rep["models"].values():
        assert 0.8 < m["auc"] <= 1 and m["auc_ci95"][0] <= m["auc"] <= m["auc_ci95"][1]
