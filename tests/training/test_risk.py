"""Risk models: loaders, ONNX parity (Keras and logistic), cards the stream and the batch scorer can use.

Small and fast: subsets, few epochs, few bootstrap resamples.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import onnx

from stream.core.features import TXN_FEATURE_LABELS, TXN_FEATURES
from stream.core.manifest import ModelCard, TensorSpec
from training import risk
from training.data import credit
from training.export import export_keras, onnx_run
from training.job import TrainContext
from training.quality import QualityLog

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def german(cache):
    return credit.load("german", cache, QualityLog())


def _io(path):
    g = onnx.load(str(path)).graph
    init = {i.name for i in g.initializer}
    dims = lambda v: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({i.name: dims(i) for i in g.input if i.name not in init}, {o.name: dims(o) for o in g.output})


@pytest.mark.parametrize("name, rows, bad_rate, n_features", [
    ("german", 1000, 0.30, 61), ("credit_data", 4452, 0.281, 29), ("lending_club", 9857, 0.0525, 119),
])
def test_loaders_shapes_and_bad_rates(cache, name, rows, bad_rate, n_features):
    log = QualityLog()
    cs = credit.load(name, cache, log)
    x, names = cs.features()
    assert len(cs.frame) == rows and x.shape == (rows, n_features) and len(names) == n_features
    assert cs.bad_rate == pytest.approx(bad_rate, abs=0.002)
    assert set(np.unique(cs.y)) == {0, 1} and np.isfinite(x).all()
    assert (cache / f"{'german_credit' if name == 'german' else name}.parquet").exists()   # cached as Parquet
    assert log.to_dict()                                                                    # went through clean_table


def test_credit_data_imputation_is_counted_and_encoded(cache):
    log = QualityLog()
    cs = credit.load("credit_data", cache, log)
    assert log.get("credit_data", "missing_imputed") > 400
    assert cs.encoding["fill"]["Income"] > 0 and cs.encoding["fill"]["Home"] == "missing"


def test_encoding_rebuilds_rows_from_a_raw_csv(german, tmp_path):
    """What `finstream score` does: raw dataset columns + the card's encoding -> the model row."""
    x, names = german.features()
    path = tmp_path / "raw.csv"
    german.frame.drop(columns=[german.target]).to_csv(path, index=False)
    back, names2 = credit.encode(pd.read_csv(path), german.encoding)
    assert names2 == names == credit.feature_names(german.encoding)
    np.testing.assert_array_equal(back, x)
    assert all("=" in n for n in names[len(german.numeric):])


def test_logistic_onnx_equals_sklearn_predict_proba(german, tmp_path):
    from sklearn.linear_model import LogisticRegression

    x, _ = german.features()
    y = german.y
    log_cols = risk.skewed_columns(x, len(german.numeric))
    assert log_cols, "credit_amount should be log-transformed in the graph"
    for cols in (log_cols, []):
        lr = risk.Logistic.fit(x[:800], y[:800], seed=1, C=0.1, log_cols=cols)
        path = lr.export(tmp_path / f"lr{len(cols)}.onnx")
        got = onnx_run(path, {"features": x[800:]})[0]
        assert got.shape == (200, 1)
        aug = risk.log_augment(x[:800], cols)
        sk = LogisticRegression(C=0.1, max_iter=3000).fit((aug - lr.mean) / lr.scale, y[:800])
        want = sk.predict_proba((risk.log_augment(x[800:], cols) - lr.mean) / lr.scale)[:, 1]
        np.testing.assert_allclose(got[:, 0], want, atol=1e-5)
        np.testing.assert_allclose(got[:, 0], lr.predict(x[800:]), atol=1e-5)
        assert _io(path) == ({"features": [None, x.shape[1]]}, {"score": [None, 1]})


def test_credit_mlp_keras_equals_onnxruntime(german, tmp_path):
    x, names = german.features()
    y = german.y
    tr, va, te = risk.stratified_split(y, 3)
    log_cols = risk.skewed_columns(x[tr], len(german.numeric))
    model, _ = risk.fit_mlp(x[tr], y[tr], x[va], y[va], seed=3, epochs=3, batch=64, log_cols=log_cols)
    path = export_keras(model, tmp_path / "mlp.onnx", [TensorSpec("features", [None, len(names)])], output_names=("score",))
    got = onnx_run(path, {"features": x[te]})[0]
    np.testing.assert_allclose(got[:, 0], risk.keras_predict(model, x[te]), atol=1e-5)
    assert _io(path) == ({"features": [None, len(names)]}, {"score": [None, 1]})


def test_train_credit_cards(german, tmp_path):
    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=5)
    cards, rep = risk.train_credit(ctx, "german", cs=german, epochs=3, n_boot=30)
    x, names = german.features()
    assert [c.name for c in cards] == ["german_credit_logistic", "german_credit_mlp"]
    for c in cards:
        ModelCard.from_dict(c.to_dict())
        assert c.task == "credit_default" and c.features == names and len(c.baseline) == len(names)
        assert c.extra["encoding"]["categorical"] == german.categorical and 0 < c.threshold < 1
        assert set(c.feature_labels) == set(names) and set(c.reference_distribution) == set(names)
        assert c.metrics["onnx_max_abs_err"] <= 1e-5 and 0.5 < c.metrics["auc"] <= 1
        assert (tmp_path / c.file).exists()
    m = rep["models"]["german_credit_logistic"]
    assert m["auc_ci95"][0] <= m["auc"] <= m["auc_ci95"][1]


def test_credit_loss_regression(cache, tmp_path):
    cs = credit.load("lending_club", cache, QualityLog())
    ctx = TrainContext(out_dir=tmp_path, cache_dir=cache, quality=QualityLog())
    (card,), rep = risk.train_credit_loss(ctx, cs=cs, n_boot=30)
    assert card.task == "credit_loss" and "int_rate" not in card.features
    assert not any(f.startswith("sub_grade=") for f in card.features)
    assert rep["rmse"] < rep["baseline_rmse"] and rep["r2"] > 0.2


def test_transaction_risk_small(tmp_path):
    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=3)
    cards, rep, winner = risk.train_transactions(ctx, n_accounts=300, days=12, epochs=2, n_boot=30)
    assert rep["synthetic"] is True and winner in {c.name for c in cards}
    x, y, day = risk.synthetic_transactions(ctx, 300, 12)
    tr = day < 8
    for c in cards:
        assert c.task == "transaction_risk" and c.features == list(TXN_FEATURES)
        assert c.feature_labels == TXN_FEATURE_LABELS and c.threshold is not None
        np.testing.assert_allclose(c.baseline, x[tr][y[tr] == 0].mean(axis=0), rtol=1e-5, atol=1e-6)
        assert c.metrics["synthetic"] is True and c.metrics["onnx_max_abs_err"] <= 1e-5
        assert _io(tmp_path / c.file) == ({"features": [None, len(TXN_FEATURES)]}, {"score": [None, 1]})


def test_metrics_helpers():
    y = np.array([0, 0, 1, 1])
    assert risk.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert risk.auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    thr, rule = risk.precision_threshold(np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.6, 0.9]), 0.6, 0.01)
    assert thr == pytest.approx(0.6) and "precision" in rule
    a = risk.at_threshold(np.array([0, 1, 1, 0]), np.array([0.9, 0.8, 0.1, 0.2]), 0.5)
    assert a == {"threshold": 0.5, "alert_rate": 0.5, "precision": 0.5, "recall": 0.5}
