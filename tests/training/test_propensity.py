"""Caravan purchase propensity: ONNX signature and parity, the CoIL top-20% count."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

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


def test_caravan_purchase_cross_validated_choice_refit_on_all(caravan, tmp_path):
    from training.export import onnx_run

    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=3)
    (card,), rep = P.train_caravan_purchase(ctx, caravan, repeats=1)
    cols = products.caravan_feature_columns(caravan)
    x, y = caravan[cols].to_numpy(np.float32), products.caravan_purchase(caravan)
    assert card.name == "caravan_purchase" and card.task == "purchase_propensity" and card.features == cols
    assert _io(tmp_path / card.file) == ({"features": [None, 85]}, {"score": [None, 1]})
    cv = rep["cv"]
    assert rep["chosen"] == max((n for n, m in cv.items() if m["exportable"]), key=lambda n: cv[n]["top20_recall"])
    for m in cv.values():
        assert m["folds"] == 5 and m["top20_recall_ci95"][0] <= m["top20_recall"] <= m["top20_recall_ci95"][1]
        assert 0.5 < m["auc"] < 0.9
    # refit on all customers: the exported file ranks all 5,822 customers, threshold = its 80th percentile
    p = onnx_run(tmp_path / card.file, {"features": x})[0][:, 0]
    assert card.threshold == pytest.approx(np.quantile(p, 0.8), rel=1e-4)
    assert P.topk_buyers(y, p) > 2 * 0.2 * y.sum()  # well above a random mailing
    # the fold figure is recomputed, not copied: one candidate's CV top-20% recall by hand
    from sklearn.model_selection import RepeatedStratifiedKFold

    cand = next(c for c in P.candidates(cols) if c.name == rep["chosen"])
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=1, random_state=3).split(x, y)
    by_hand = np.mean([P.topk_buyers(y[te], cand.fit(x[tr], y[tr], 3)(x[te])) / y[te].sum() for tr, te in folds])
    assert cv[rep["chosen"]]["top20_recall"] == pytest.approx(by_hand)


def test_topk_buyers():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0, 0.05])
    assert P.topk_buyers(y, p, 0.2) == 1 and P.topk_buyers(y, p, 0.5) == 2
