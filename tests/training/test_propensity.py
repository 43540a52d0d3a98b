"""Caravan purchase propensity: ONNX signature and parity, the CoIL top-20% count."""
from __future__ import annotations

import numpy as np
import pytest

import onnx

from training import propensity as P
from training.data import products
from training.job import TrainContext
from training.quality import QualityLog

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def caravan(tmp_path_factory):
    return products.load_caravan(tmp_path_factory.mktemp("cache"), QualityLog())


def _io(path):
    g = onnx.load(str(path)).graph
    init = {i.name for i in g.initializer}
    dims = lambda v: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({i.name: dims(i) for i in g.input if i.name not in init}, {o.name: dims(o) for o in g.output})


def test_caravan_purchase(caravan, tmp_path):
    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=3)
    cards, rep = P.train_caravan_purchase(ctx, caravan, epochs=3, n_boot=30)
    assert "caravan_purchase" in {c.name for c in cards} and len(cards) == 2
    for c in cards:
        assert c.task == "purchase_propensity" and c.features == products.caravan_feature_columns(caravan)
        assert _io(tmp_path / c.file) == ({"features": [None, 85]}, {"score": [None, 1]})
        assert c.metrics["onnx_max_abs_err"] <= 1e-5
    for m in rep["models"].values():
        assert m["top20_selected"] == round(0.2 * m["test_customers"])
        assert 0 <= m["top20_buyers_found"] <= m["test_buyers"]
        assert m["top20_recall_ci95"][0] <= m["top20_recall"] <= m["top20_recall_ci95"][1]


def test_topk_buyers():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0, 0.05])
    assert P.topk_buyers(y, p, 0.2) == 1 and P.topk_buyers(y, p, 0.5) == 2
