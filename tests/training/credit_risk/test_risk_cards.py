"""The risk cards the stream and the batch scorer use: credit default (out-of-fold figures, models
refitted on all rows), credit loss, synthetic transaction risk, and the metric helpers."""

from __future__ import annotations

import numpy as np
import pytest

from stream.core.features import TXN_FEATURE_LABELS, TXN_FEATURES
from stream.core.manifest import ModelCard
from tests.training.credit_risk.probes import onnx_io, spy
from training import risk
from training.data import credit
from training.export import onnx_run
from training.job import TrainContext
from training.quality import QualityLog

pytestmark = pytest.mark.training


def test_train_credit_cards(german, tmp_path):
    """Every figure is out-of-fold; the exported models are refitted on ALL rows (encoding,
    baseline, fingerprint and the logistic's scores are those of a fit on every row)."""
    from training import credit_cv
    from training.export import data_fingerprint

    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=5)
    cs = spy(german)
    cards, rep = risk.train_credit(
        ctx,
        "german",
        cs=cs,
        max_epochs=3,
        n_boot=30,
        folds=3,
        cv_repeats={"logistic": 2, "gbm": 2, "mlp": 1, "ensemble": 2, "ordinal": 2, "ensemble_ordinal": 2},
    )
    enc = german.fit_encoding()
    x, names = german.features(enc)
    y = german.y
    assert cs.fits[-1] == set(range(1000)) and all(len(f) < 700 for f in cs.fits[:-1])  # CV folds, then all rows
    assert [c.name for c in cards] == [
        "german_credit_logistic",
        "german_credit_gbm",
        "german_credit_mlp",
        "german_credit_ordinal",  # the credit7 candidate: ordinal codes, in the same graph input
        "german_credit_ensemble",
        "german_credit_ensemble_ordinal",
    ]
    assert sum(c.extra["chosen_by_cv"] for c in cards) == 1 and rep["chosen"] == max(
        rep["cv"], key=lambda n: rep["cv"][n]["auc_shared"]
    )
    assert rep["fit_rows"] == 1000 and [rep["cv"][c.name]["folds"] for c in cards] == [6, 6, 3, 6, 6, 6]
    for c in cards:
        ModelCard.from_dict(c.to_dict())
        assert c.task == "credit_default" and c.features == names and len(c.baseline) == len(names)
        assert c.extra["encoding"] == enc and 0 < c.threshold < 1  # the refit's bounds: all rows
        assert c.data_fingerprint == data_fingerprint(x, y)
        assert set(c.feature_labels) == set(names) and set(c.reference_distribution) == set(names)
        assert c.metrics["onnx_max_abs_err"] <= 1e-4 and 0.5 < c.metrics["auc"] <= 1
        assert c.metrics["cv_auc"] == rep["cv"][c.name]["auc"] and c.metrics["n"] == 1000  # out-of-fold: every row
    refit = credit_cv.fit_family("logistic", x, y, len(german.numeric), 5, {})
    p = onnx_run(tmp_path / cards[0].file, {"features": x})[0][:, 0]
    np.testing.assert_allclose(p, refit.predict(x), atol=1e-5)  # the exported logistic = a fit on all rows
    np.testing.assert_allclose(cards[0].baseline, x.mean(axis=0), rtol=1e-5)
    # the ensemble is ONE file whose output is the mean of its members' exported outputs
    members = [onnx_run(tmp_path / c.file, {"features": x})[0] for c in cards[:2]]
    ens = onnx_run(tmp_path / cards[4].file, {"features": x})[0]
    assert ens.shape == (1000, 1) and cards[4].family == "mean_ensemble"
    np.testing.assert_allclose(ens, (members[0] + members[1]) / 2, atol=1e-6)
    ordinal = onnx_run(tmp_path / cards[3].file, {"features": x})[0]  # the recoded logistic, refitted on all rows
    refit = credit_cv.fit_family(
        "ordinal", x, y, len(german.numeric), 5, {}, spec=credit_cv.recode_spec(german, "ordinal")
    )
    assert cards[3].family == "recoded" and cards[5].family == "mean_ensemble"
    np.testing.assert_allclose(ordinal[:, 0], refit.predict(x), atol=1e-5)
    np.testing.assert_allclose(
        onnx_run(tmp_path / cards[5].file, {"features": x})[0], (ordinal + members[1]) / 2, atol=1e-6
    )
    m = rep["models"][rep["chosen"]]
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
        assert onnx_io(tmp_path / c.file) == ({"features": [None, len(TXN_FEATURES)]}, {"score": [None, 1]})


def test_metrics_helpers():
    y = np.array([0, 0, 1, 1])
    assert risk.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert risk.auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    thr, rule = risk.precision_threshold(np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.6, 0.9]), 0.6, 0.01)
    assert thr == pytest.approx(0.6) and "precision" in rule
    a = risk.at_threshold(np.array([0, 1, 1, 0]), np.array([0.9, 0.8, 0.1, 0.2]), 0.5)
    assert a == {"threshold": 0.5, "alert_rate": 0.5, "precision": 0.5, "recall": 0.5}
