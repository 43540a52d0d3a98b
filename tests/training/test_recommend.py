"""Recommenders and caravan purchase: loaders, the shared ONNX signature, parity, the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

import onnx

from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS
from training import recommend as R
from training.data import products
from training.job import TrainContext
from training.quality import QualityLog

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def caravan(cache):
    return products.load_caravan(cache, QualityLog())


@pytest.fixture(scope="module")
def arrays(caravan):
    return products.caravan_holdings(caravan), products.caravan_attributes(caravan)


def _io(path):
    g = onnx.load(str(path)).graph
    init = {i.name for i in g.initializer}
    dims = lambda v: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({i.name: dims(i) for i in g.input if i.name not in init}, {o.name: dims(o) for o in g.output})


SIGNATURE = ({"holdings": [None, 22], "attributes": [None, 43]}, {"scores": [None, 22]})


def test_caravan_loader(caravan, arrays, cache):
    h, a = arrays
    assert caravan.shape == (5822, 86) and len(products.caravan_feature_columns(caravan)) == 85
    assert h.shape == (5822, len(PRODUCT_IDS)) == (5822, 22) and a.shape == (5822, len(CUSTOMER_ATTRIBUTES)) == (5822, 43)
    assert set(np.unique(h)) == {0.0, 1.0}
    assert int(h[:, PRODUCT_IDS.index("caravan")].sum()) == 348 == int(products.caravan_purchase(caravan).sum())
    assert h[:, PRODUCT_IDS.index("car")].mean() == pytest.approx(0.511, abs=0.002)
    assert (cache / "caravan.parquet").exists()


def test_movielens_loader(cache):
    m = products.load_movielens(cache, QualityLog())
    assert list(m.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(m) == 100_004 and m["userId"].nunique() == 671


def test_evaluator_on_a_hand_made_case():
    scores = np.array([[0.9, 0.1, 0.5, 0.3],
                       [0.9, 0.1, 0.5, 0.3],
                       [0.0, 0.2, 0.2, 0.0]])
    h_in = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    hidden = np.array([2, 1, 1])
    ranks = R.hidden_rank(scores, h_in, hidden)
    # row 0: candidates {1: .1, 2: .5, 3: .3} -> hidden 2 ranks 1; row 1: hidden 1 ranks 3;
    # row 2: candidates {0: 0, 1: .2, 2: .2} -> tie with product 2 counts against: rank 2
    assert ranks.tolist() == [1, 3, 2]
    m = R.rank_metrics(ranks, ks=(1, 3), n_boot=50)
    assert m["hr@1"] == pytest.approx(1 / 3) and m["hr@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((1 + 0.5 + 1 / np.log2(3)) / 3)
    assert m["ndcg@1"] == pytest.approx(1 / 3)


def test_hide_one():
    h = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=np.float32)
    rows, h_in, hidden = R.hide_one(h, seed=0)
    assert rows.tolist() == [0, 2]
    assert (h_in.sum(axis=1) == h[rows].sum(axis=1) - 1).all()
    assert all(h[r, j] == 1 and h_in[i, j] == 0 for i, (r, j) in enumerate(zip(rows, hidden)))


@pytest.mark.parametrize("kind", ["item_cf", "content"])
def test_linear_recommenders_signature_and_parity(kind, arrays, tmp_path):
    h, a = arrays
    model = R.ItemCF(h[:4000]) if kind == "item_cf" else R.Content(h[:4000], a[:4000])
    path = model.export(tmp_path / f"{kind}.onnx")
    assert _io(path) == SIGNATURE
    got = R.onnx_scores(path, h[4000:4500], a[4000:4500])
    assert got.shape == (500, 22) and got.dtype == np.float32
    np.testing.assert_allclose(got, model.scores(h[4000:4500], a[4000:4500]), atol=1e-4 if kind == "item_cf" else 1e-5)
    assert (got[h[4000:4500] > 0] < -50).all()                        # held products pushed down


def test_item_cf_is_cosine():
    h = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]], dtype=np.float32)
    cf = R.ItemCF(h, prior=0.0)
    assert cf.sim[0, 1] == pytest.approx(2 / np.sqrt(3 * 2)) and cf.sim[0, 0] == 0
    np.testing.assert_allclose(cf.raw(np.array([[0, 1, 0]], np.float32)), cf.sim[[1]])


def test_two_tower_keras_equals_onnxruntime(arrays, tmp_path):
    h, a = arrays
    tt = R.TwoTower(h[:3000], a[:3000], h[3000:3500], a[3000:3500], seed=3, epochs=2, copies=1)
    path = tt.export(tmp_path / "tt.onnx")
    assert _io(path) == SIGNATURE
    got = R.onnx_scores(path, h[4000:4600], a[4000:4600])
    np.testing.assert_allclose(got, tt.scores(h[4000:4600], a[4000:4600]), atol=1e-5)


def test_movielens_benchmark_small(cache):
    m = products.load_movielens(cache, QualityLog())
    m = m[m["userId"] <= 80]
    ctx = TrainContext(out_dir=cache, cache_dir=cache, quality=QualityLog())
    res = R.movielens_benchmark(ctx, m, n_boot=30)
    assert res["users"] == 80 and res["negatives"] == 99
    for name in ("item_cf", "popularity"):
        assert 0 <= res[name]["ndcg@10"] <= res[name]["hr@10"] <= 1 and res[name]["n"] == 80


def test_train_recommenders_cards(caravan, tmp_path):
    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=3)
    cards, rep, winner = R.train_recommenders(ctx, caravan, epochs=2, n_boot=30)
    assert {c.name for c in cards} == {"rec_item_cf", "rec_content", "rec_two_tower"} and winner in rep["test"]
    for c in cards:
        assert c.task == "recommend" and _io(tmp_path / c.file) == SIGNATURE
        assert [t.name for t in c.inputs] == ["holdings", "attributes"] and c.inputs[0].features == list(PRODUCT_IDS)
        assert len(c.extra["attribute_means"]) == 43                  # what the stream feeds for live users
        assert c.metrics["onnx_max_abs_err"] <= 1e-4
    assert rep["test"]["popularity"]["n"] == rep["test_served"]["popularity"]["n"] > 400
