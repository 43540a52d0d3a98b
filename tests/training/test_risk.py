"""Risk models on the credit sets and synthetic transactions: loaders, ONNX parity (Keras and logistic),
cards the stream and the batch scorer can use (the real card data: test_card_data.py).

Small and fast: subsets, few epochs, few bootstrap resamples.
"""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest

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


@pytest.mark.parametrize(
    "name, rows, bad_rate, n_features",
    [
        ("german", 1000, 0.30, 61),
        ("credit_data", 4452, 0.281, 29),
        ("lending_club", 9857, 0.0525, 119),
    ],
)
def test_loaders_shapes_and_bad_rates(cache, name, rows, bad_rate, n_features):
    log = QualityLog()
    cs = credit.load(name, cache, log)
    x, names = cs.features()
    assert len(cs.frame) == rows and x.shape == (rows, n_features) and len(names) == n_features
    assert cs.bad_rate == pytest.approx(bad_rate, abs=0.002)
    assert set(np.unique(cs.y)) == {0, 1} and np.isfinite(x).all()
    assert (cache / f"{'german_credit' if name == 'german' else name}.parquet").exists()  # cached as Parquet
    assert log.to_dict()  # went through clean_table


def test_credit_data_imputation_is_counted_and_encoded(cache):
    log = QualityLog()
    cs = credit.load("credit_data", cache, log)
    assert log.get("credit_data", "missing_imputed") > 400
    enc = cs.fit_encoding()
    assert enc["fill"]["Income"] > 0 and enc["fill"]["Home"] == "missing" and "fill" not in cs.encoding


def test_fills_and_bounds_come_from_the_training_rows_only(cache):
    """Would fail if the loader or the encoding fitted anything on held-out rows: making the other
    rows absurd changes neither the fills nor the winsorising bounds, and those are exactly the
    training rows' median and robust-z bounds."""
    from training.quality import _robust_bounds

    cs = credit.load("credit_data", cache, QualityLog())
    train = np.arange(0, len(cs.frame), 2)
    enc = cs.fit_encoding(train)
    other = cs.frame.copy()
    rest = np.setdiff1d(np.arange(len(other)), train)
    other.loc[rest, "Income"] = other.loc[rest, "Income"] * 1000 + 1e6
    twisted = credit.CreditSet(cs.name, other, cs.target, cs.y, cs.numeric, cs.categorical, cs.source, cs.winsorize)
    assert twisted.fit_encoding(train) == enc
    ref = cs.frame.iloc[train]
    assert enc["fill"]["Income"] == pytest.approx(float(ref["Income"].median()))
    lo, hi = _robust_bounds(ref["Income"].to_numpy(np.float64), credit.WINSOR_Z)
    assert enc["clip"]["Income"] == pytest.approx([max(lo, 0.0), hi])
    assert enc != cs.fit_encoding()  # all rows would give other statistics
    x, names = twisted.features(enc)  # held-out rows are clipped, not refitted
    assert x[rest, names.index("Income")].max() <= hi + 1e-3


class _Spy(credit.CreditSet):
    """Records every fitted encoding's rows, and which encoding each feature matrix was built from."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.fits, self.encodings, self.used = [], [], []

    def fit_encoding(self, rows=None, log=None):
        self.fits.append(None if rows is None else set(np.asarray(rows).tolist()))
        self.encodings.append(super().fit_encoding(rows, log))
        return self.encodings[-1]

    def features(self, enc=None):
        self.used.append(enc)
        return super().features(enc)


def _spy(cs) -> _Spy:
    return _Spy(**{k: getattr(cs, k) for k in cs.__dataclass_fields__})


def test_cv_fits_every_preprocessing_step_inside_the_training_fold(german):
    """Spies on the fitted encoding: every fold's fills and bounds come from its training rows only
    (never its test rows), every fold's feature matrix is built from that fold's encoding (not from
    defaults fitted on all rows), and a family runs only the repeats it is given."""
    from training import credit_cv

    cs = _spy(german)
    rows = np.arange(0, 1000, 3)
    cv = credit_cv.cross_validate(
        cs,
        rows,
        3,
        risk.MLP_CONFIG["default"],
        folds=3,
        repeats={"logistic": 2, "gbm": 1},
        families=("logistic", "gbm"),
    )
    calls = cs.fits
    assert len(calls) == 6 and all(c is not None and c < set(rows.tolist()) for c in calls)
    assert set().union(*calls[:3]) == set(rows.tolist())  # each row is a test row once per repeat
    assert all(len(c) == pytest.approx(len(rows) * 2 / 3, abs=2) for c in calls)
    assert len(cs.used) == 6 and all(u is e for u, e in zip(cs.used, cs.encodings))  # features from the fold's own fit
    assert (cv["logistic"]["folds"], cv["gbm"]["folds"]) == (6, 3) and cv["gbm"]["repeats"] == 1
    chosen = credit_cv.choose(cv)  # compared on the 3 folds both ran, not on the logistic's 6
    assert cv["logistic"]["auc_shared"] == pytest.approx(np.mean(cv["logistic"]["fold_aucs"][:3]))
    assert chosen == max(("logistic", "gbm"), key=lambda f: cv[f]["auc_shared"])
    assert credit_cv.choose(cv) in ("logistic", "gbm") and not np.isnan(cv["gbm"]["oof"]).any()
    assert set(cv["gbm"]["importance"]) == set(german.encoding["numeric"]) | set(german.encoding["categorical"])


def test_cv_ensemble_averages_its_members_on_the_same_folds(german):
    """The ensemble is scored from its members' fits of each fold: no encoding (fills, bounds) of
    its own, its out-of-fold predictions are exactly the mean of the members' on the same rows,
    and it may not run repeats its members did not."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    from training import credit_cv

    cs = _spy(german)
    rows = np.arange(0, 1000, 3)
    per = {"logistic": 2, "gbm": 2, "ensemble": 2}
    cv = credit_cv.cross_validate(cs, rows, 3, {}, folds=3, repeats=per, families=("ensemble", "logistic", "gbm"))
    assert len(cs.fits) == 6 and all(c < set(rows.tolist()) for c in cs.fits)  # one fold-only encoding a fold
    assert all(u is e for u, e in zip(cs.used, cs.encodings))
    want = (cv["logistic"]["oof"] + cv["gbm"]["oof"]) / 2
    np.testing.assert_array_equal(cv["ensemble"]["oof"], want)
    assert cv["ensemble"]["folds"] == 6 and cv["ensemble"]["auc"] == pytest.approx(np.mean(cv["ensemble"]["fold_aucs"]))
    _, b = next(RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=3).split(rows, cs.y[rows]))
    assert cv["ensemble"]["fold_aucs"][0] == pytest.approx(risk.auc(cs.y[rows][b], want[b]))  # the same first fold
    with pytest.raises(ValueError, match="members"):
        credit_cv.cross_validate(
            cs,
            rows,
            3,
            {},
            folds=3,
            repeats={"logistic": 1, "gbm": 1, "ensemble": 2},
            families=("logistic", "gbm", "ensemble"),
        )


def test_cv_fold_does_not_see_its_test_rows(german):
    """Leak check on values: wildly changing the first fold's test rows changes nothing the fold
    learnt (its fills and bounds), so its model scores the untouched rows the same."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    from training import credit_cv

    rows = np.arange(1000)
    a, b = next(RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=4).split(rows, german.y))
    frame = german.frame.copy()
    num = [c for c in german.numeric if c in german.winsorize] or list(german.numeric)
    frame.loc[b, num] = frame.loc[b, num] * 1000  # only the fold's test rows
    twisted = credit.CreditSet(
        german.name, frame, german.target, german.y, german.numeric, german.categorical, german.source, german.winsorize
    )
    out = []
    for cs in (_spy(german), _spy(twisted)):
        cv = credit_cv.cross_validate(cs, rows, 4, {}, folds=3, repeats=1, families=("logistic",))
        out.append((cs.used[0], cv["logistic"]["fold_aucs"]))
    assert out[0][0] == out[1][0]  # the encoding the first fold's rows were built with ignores its test rows
    assert out[0][1][1:] != out[1][1][1:]  # ... while later folds, which train on those rows, do change


def test_encoding_rebuilds_rows_from_a_raw_csv(german, tmp_path):
    """What `finstream score` does: raw dataset columns + the card's encoding -> the model row."""
    enc = german.fit_encoding(np.arange(0, 1000, 2))  # as a card carries it: fitted fills and bounds
    x, names = german.features(enc)
    path = tmp_path / "raw.csv"
    german.frame.drop(columns=[german.target]).to_csv(path, index=False)
    back, names2 = credit.encode(pd.read_csv(path), enc)
    assert names2 == names == credit.feature_names(german.encoding)
    np.testing.assert_array_equal(back, x)
    assert all("=" in n for n in names[len(german.numeric) :])


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


def test_clipped_logistic_bounds_come_from_its_training_rows_and_hold_in_the_graph(tmp_path):
    """``clip_quantile``: bounds are the training rows' quantiles, a row far past them scores as
    if it sat on the bound (no linear extrapolation), and the ONNX graph clips the same way."""
    from training.models.examples import score_rows

    x, y = score_rows(3, n=400)
    lr = risk.Logistic.fit(x[:300], y[:300], seed=3, C=0.1, log_cols=[0, 1], clip_quantile=0.01)
    np.testing.assert_allclose(lr.bounds, np.quantile(x[:300], [0.01, 0.99], axis=0), rtol=1e-6)
    far = x[300:].copy()
    far[:, 2] = 1e6  # far past anything seen in training
    at_bound = far.copy()
    at_bound[:, 2] = lr.bounds[1, 2]
    np.testing.assert_allclose(lr.predict(far), lr.predict(at_bound))
    path = lr.export(tmp_path / "clipped.onnx")
    for rows in (x[300:], far):
        np.testing.assert_allclose(onnx_run(path, {"features": rows})[0][:, 0], lr.predict(rows), atol=1e-5)
    unclipped = risk.Logistic.fit(x[:300], y[:300], seed=3, C=0.1, log_cols=[0, 1])
    assert unclipped.bounds is None and not np.allclose(unclipped.predict(far), unclipped.predict(at_bound))


def test_credit_mlp_keras_equals_onnxruntime(german, tmp_path):
    x, names = german.features()
    y = german.y
    tr, va, te = risk.stratified_split(y, 3)
    log_cols = risk.skewed_columns(x[tr], len(german.numeric))
    model, _ = risk.fit_mlp(x[tr], y[tr], x[va], y[va], seed=3, epochs=3, batch=64, log_cols=log_cols)
    path = export_keras(
        model, tmp_path / "mlp.onnx", [TensorSpec("features", [None, len(names)])], output_names=("score",)
    )
    got = onnx_run(path, {"features": x[te]})[0]
    np.testing.assert_allclose(got[:, 0], risk.keras_predict(model, x[te]), atol=1e-5)
    assert _io(path) == ({"features": [None, len(names)]}, {"score": [None, 1]})


def test_train_credit_cards(german, tmp_path):
    """Every figure is out-of-fold; the exported models are refitted on ALL rows (encoding,
    baseline, fingerprint and the logistic's scores are those of a fit on every row)."""
    from training import credit_cv
    from training.export import data_fingerprint

    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=5)
    cs = _spy(german)
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
        assert _io(tmp_path / c.file) == ({"features": [None, len(TXN_FEATURES)]}, {"score": [None, 1]})


def test_metrics_helpers():
    y = np.array([0, 0, 1, 1])
    assert risk.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert risk.auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    thr, rule = risk.precision_threshold(np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.6, 0.9]), 0.6, 0.01)
    assert thr == pytest.approx(0.6) and "precision" in rule
    a = risk.at_threshold(np.array([0, 1, 1, 0]), np.array([0.9, 0.8, 0.1, 0.2]), 0.5)
    assert a == {"threshold": 0.5, "alert_rate": 0.5, "precision": 0.5, "recall": 0.5}
