"""Every exported forecaster: Keras (or numpy, for AR) and onnxruntime agree within 1e-5 on hold-out rows,
and the ONNX file has the interface the stream feeds (``window`` [N,32,1] -> ``forecast`` [N,2])."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from stream.core.features import FORECAST_WINDOW
from training import forecast as F
from training.data.market import prepare
from training.quality import QualityLog

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("cache"), QualityLog())


@pytest.fixture(scope="module")
def holdout(data):
    X, y = data.pooled("test")
    return X[:2000], y[:2000]


def _check_interface(path):
    g = onnx.load(str(path)).graph
    init = {i.name for i in g.initializer}
    (inp,) = [i for i in g.input if i.name not in init]
    (out,) = g.output
    assert inp.name == "window" and out.name == "forecast"
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [FORECAST_WINDOW, 1] and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in out.type.tensor_type.shape.dim][1:] == [2]


@pytest.mark.parametrize("kind", ["conv1d", "lstm"])
def test_keras_and_onnxruntime_agree(kind, data, holdout, tmp_path):
    model, info = F.train_keras(kind, data, seed=3, epochs=2, patience=1, max_rows=3000)
    X, _ = holdout
    path = F.export_forecaster_keras(model, tmp_path / f"forecast_{kind}.onnx")
    _check_interface(path)
    k = F.keras_predict(model, X)
    o = F.onnx_predict(path, X)
    assert o.shape == (len(X), 2)
    assert np.max(np.abs(k - o)) < 1e-5
    assert (o[:, 1] > 0).all() and np.isfinite(o).all()
    if kind == "lstm":  # the recurrent layer stays a native ONNX LSTM op
        assert "LSTM" in {n.op_type for n in onnx.load(str(path)).graph.node}


def test_ar_onnx_matches_numpy(data, holdout, tmp_path):
    ar, info = F.fit_ar(data)
    assert 1 <= info["p"] <= FORECAST_WINDOW and 1 <= info["q"] <= FORECAST_WINDOW
    path = F.export_ar(ar, tmp_path / "forecast_ar.onnx")
    _check_interface(path)
    X, _ = holdout
    o = F.onnx_predict(path, X)
    assert np.max(np.abs(o - ar.predict(X))) < 1e-5
    assert (o[:, 1] >= ar.floor - 1e-9).all()


def test_metrics_and_default_rule():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 0.01, 600)
    groups = np.repeat([0, 1, 2], 200)
    preds = {
        "zero_return": np.stack([np.zeros(600), np.full(600, np.nan)], 1),
        "ewma_0.94": np.stack([np.full(600, np.nan), np.full(600, 0.02)], 1),
        "forecast_ar": np.stack([np.zeros(600) + 1e-4, np.full(600, 0.01)], 1),  # right vol
        "forecast_lstm": np.stack([y * 0 + 0.02, np.full(600, 0.005)], 1),  # biased mean
    }
    m = F.evaluate(preds, y, groups)
    assert m["zero_return"]["r2_oos"] == 0.0
    assert m["forecast_lstm"]["rmse_minus_zero_ci"][0] > 0  # significantly worse: not eligible
    assert m["forecast_ar"]["qlike"] < m["ewma_0.94"]["qlike"]
    best, why = F.choose_default(m, candidates=("forecast_ar", "forecast_lstm"))
    assert best == "forecast_ar"
    # QLIKE is minimised at the true variance
    assert F.qlike(np.full(600, 0.01), y) < F.qlike(np.full(600, 0.02), y)
    assert F.qlike(np.full(600, 0.01), y) < F.qlike(np.full(600, 0.005), y)


def test_block_bootstrap_stays_within_instruments():
    groups = np.repeat([0, 1], [50, 30])
    idx = F.block_indices(groups, n_boot=20, block=7)
    assert idx.shape == (20, 80)
    assert (groups[idx[:, :50]] == 0).all() and (groups[idx[:, 50:]] == 1).all()
