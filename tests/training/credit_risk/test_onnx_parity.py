"""The exported risk models score in onnxruntime as in training: the logistic (against sklearn, and
clipped at its training bounds) and the Keras MLP."""

from __future__ import annotations

import numpy as np
import pytest

from stream.core.manifest import TensorSpec
from tests.training.credit_risk.probes import onnx_io
from training import risk
from training.export import export_keras, onnx_run

pytestmark = pytest.mark.training


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
        assert onnx_io(path) == ({"features": [None, x.shape[1]]}, {"score": [None, 1]})


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
    assert onnx_io(path) == ({"features": [None, len(names)]}, {"score": [None, 1]})
