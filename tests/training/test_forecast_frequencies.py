"""A model per bar interval: the served hourly forecaster, fed through the stream's own feature and
ONNX code, covers about 95% of its hold-out moves; each interval's card says its interval; the
classical EWMA/GARCH graphs compute what their numpy definitions say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream.core.bars import forecast_slot
from stream.core.features import Standardiser, forecast_band, forecast_input
from stream.core.manifest import read_manifest
from stream.serving.models import load_model
from stream.settings import REPO_ROOT
from training import forecast_classic as C
from training import forecast_models as M
from training.data.market import load_hourly_prices, prepare
from training.quality import QualityLog

pytestmark = pytest.mark.training
MODEL_DIR = REPO_ROOT / "onnx_models"


@pytest.fixture(scope="module")
def hourly(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    q = QualityLog()
    return prepare(cache, q, prices=load_hourly_prices(cache, q))


def test_served_hourly_band_covers_about_95_percent_of_its_holdout(hourly):
    manifest = read_manifest(MODEL_DIR)
    card = manifest.get(manifest.defaults[forecast_slot(3600)])
    assert card.extra["bar_s"] == 3600
    model = load_model(card, MODEL_DIR)
    inst = hourly.instruments[0]
    assert inst.symbol == "EURUSD" and len(inst.y) > 4000
    W = card.inputs[0].shape[1]
    prices = np.exp(np.concatenate([[0.0], np.cumsum(inst.returns)]))  # the closes, up to a constant
    k = np.arange(inst.n_val, len(inst.y))  # hold-out samples
    windows = np.stack([prices[j : j + W + 1] for j in k])  # what the stream holds at each close
    pred = model.run({"window": forecast_input(windows, Standardiser.from_dict(card.normalisation["returns"]))})[0]
    lo, hi = forecast_band(pred[:, 0].astype(np.float64), pred[:, 1].astype(np.float64), card.extra["band_z"])
    y = inst.y[k]
    coverage = float(np.mean((y >= lo) & (y <= hi)))
    assert 0.93 <= coverage <= 0.97, coverage
    assert coverage == pytest.approx(card.metrics["coverage_95"], abs=2e-3)


def test_each_interval_has_its_own_model_and_report():
    manifest = read_manifest(MODEL_DIR)
    for bar_s in (3600, 86400):
        card = manifest.get(manifest.defaults[forecast_slot(bar_s)])
        assert card.extra["bar_s"] == bar_s and card.extra["horizon_s"] == bar_s
    assert manifest.defaults["forecast"] == manifest.defaults[forecast_slot(86400)]
    report = json.loads((REPO_ROOT / "reports" / "models.json").read_text())["jobs"]["forecast"]["report"]
    for iv in ("1h", "1d"):
        h = report["frequencies"][iv]["holdout"]
        for name in ("ewma_0.94", "garch_1_1", report["frequencies"][iv]["default"]):
            assert {"qlike", "coverage_95"} <= set(h[name]), (iv, name)


def test_ewma_and_garch_graphs_match_numpy(hourly, tmp_path):
    X, _ = hourly.pooled("test")
    for f in (C.ewma_filter(hourly.norm, hourly.window), C.fit_garch_filter(hourly)):
        path = C.export_filter(f, tmp_path / "f.onnx", hourly.window)
        o, n = M.onnx_predict(path, X), f.predict(X)
        assert np.max(np.abs(o[:, 0] - n[:, 0])) < 1e-9 and (o[:, 1] > 0).all()
        assert np.max(np.abs(o[:, 1] - n[:, 1]) / n[:, 1]) < 1e-5
    assert C.ewma_filter(hourly.norm, hourly.window).w.sum() == pytest.approx(1.0)


def test_band_multiplier_is_fitted_to_the_tails():
    from training.forecast_eval import band_coverage, calibrate_band_z

    rng = np.random.default_rng(5)
    sd = np.full(20000, 0.01)
    fat = rng.standard_t(3, size=(2, 20000)) * 0.01 / np.sqrt(3)  # unit-variance t(3): fatter tails
    z = calibrate_band_z(np.zeros(20000), sd, fat[0])
    assert z == pytest.approx(3.182 / np.sqrt(3), abs=0.05)  # the t(3) two-sided 95% point, unit variance
    assert band_coverage(np.zeros(20000), sd, fat[1], z) == pytest.approx(0.95, abs=0.006)
    gauss = rng.normal(0, 0.01, 20000)
    assert calibrate_band_z(np.zeros(20000), sd, gauss) == pytest.approx(1.96, abs=0.05)
