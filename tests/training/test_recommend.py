"""Recommenders and caravan purchase: loaders, the shared ONNX signature, parity, the evaluator."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS
from stream.core.profiles import RECENT_CAP, UserProfile, apply_event
from stream.serving.models import load_model
from stream.serving.recommending import model_feeds
from training import recommend as R
from training import recommend_eval as E
from training import recommend_models as RM
from training.data import products
from training.job import TrainContext
from training.quality import QualityLog
from training.recommend_movielens import movielens_benchmark
from training.recommend_onnx import onnx_scores
from training.recommend_twotower import TwoTower

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
    assert h.shape == (5822, len(PRODUCT_IDS)) == (5822, 22) and a.shape == (5822, len(CUSTOMER_ATTRIBUTES)) == (
        5822,
        43,
    )
    assert set(np.unique(h)) == {0.0, 1.0}
    assert int(h[:, PRODUCT_IDS.index("caravan")].sum()) == 348 == int(products.caravan_purchase(caravan).sum())
    assert h[:, PRODUCT_IDS.index("car")].mean() == pytest.approx(0.511, abs=0.002)
    assert (cache / "caravan.parquet").exists()


def test_movielens_loader(cache):
    m = products.load_movielens(cache, QualityLog())
    assert list(m.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(m) == 100_004 and m["userId"].nunique() == 671


def test_evaluator_on_a_hand_made_case():
    scores = np.array([[0.9, 0.1, 0.5, 0.3], [0.9, 0.1, 0.5, 0.3], [0.0, 0.2, 0.2, 0.0]])
    h_in = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    hidden = np.array([2, 1, 1])
    ranks = E.hidden_rank(scores, h_in, hidden)
    # row 0: candidates {1: .1, 2: .5, 3: .3} -> hidden 2 ranks 1; row 1: hidden 1 ranks 3;
    # row 2: candidates {0: 0, 1: .2, 2: .2} -> tie with product 2 counts against: rank 2
    assert ranks.tolist() == [1, 3, 2]
    m = E.rank_metrics(ranks, ks=(1, 3), n_boot=50)
    assert m["hr@1"] == pytest.approx(1 / 3) and m["hr@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((1 + 0.5 + 1 / np.log2(3)) / 3)
    assert m["ndcg@1"] == pytest.approx(1 / 3)


def test_hide_one():
    h = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=np.float32)
    rows, h_in, hidden = E.hide_one(h, seed=0)
    assert rows.tolist() == [0, 2]
    assert (h_in.sum(axis=1) == h[rows].sum(axis=1) - 1).all()
    assert all(h[r, j] == 1 and h_in[i, j] == 0 for i, (r, j) in enumerate(zip(rows, hidden)))


@pytest.mark.parametrize("kind", ["item_cf", "content"])
def test_linear_recommenders_signature_and_parity(kind, arrays, tmp_path):
    h, a = arrays
    model = RM.ItemCF(h[:4000]) if kind == "item_cf" else RM.Content(h[:4000], a[:4000])
    path = model.export(tmp_path / f"{kind}.onnx")
    assert _io(path) == SIGNATURE
    got = onnx_scores(path, h[4000:4500], a[4000:4500])
    assert got.shape == (500, 22) and got.dtype == np.float32
    np.testing.assert_allclose(got, model.scores(h[4000:4500], a[4000:4500]), atol=1e-4 if kind == "item_cf" else 1e-5)
    assert (got[h[4000:4500] > 0] < -50).all()  # held products pushed down


def test_item_cf_is_cosine():
    h = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]], dtype=np.float32)
    cf = RM.ItemCF(h, prior=0.0)
    assert cf.sim[0, 1] == pytest.approx(2 / np.sqrt(3 * 2)) and cf.sim[0, 0] == 0
    np.testing.assert_allclose(cf.raw(np.array([[0, 1, 0]], np.float32)), cf.sim[[1]])


def test_two_tower_keras_equals_onnxruntime(arrays, tmp_path):
    h, a = arrays
    tt = TwoTower(h[:3000], a[:3000], h[3000:3500], a[3000:3500], seed=3, epochs=2, copies=1)
    path = tt.export(tmp_path / "tt.onnx")
    assert _io(path) == SIGNATURE
    got = onnx_scores(path, h[4000:4600], a[4000:4600])
    np.testing.assert_allclose(got, tt.scores(h[4000:4600], a[4000:4600]), atol=1e-5)


def test_movielens_benchmark_small(cache):
    m = products.load_movielens(cache, QualityLog())
    m = m[m["userId"] <= 80]
    ctx = TrainContext(out_dir=cache, cache_dir=cache, quality=QualityLog())
    res = movielens_benchmark(ctx, m, n_boot=30)
    assert res["users"] == 80 and res["negatives"] == 99
    for name in (
        "item_cf",
        "popularity",
        "recent_uniform",
        "recent_decay",
        "blend",
        "transitions",
        "blend_transitions",
    ):
        assert 0 <= res[name]["ndcg@10"] <= res[name]["hr@10"] <= 1 and res[name]["n"] == 80
    assert res["chosen_on_validation"]["blend"] == f"blend@{res['blend_half_life']:g},{res['blend_beta']:g}"
    d = res["ndcg@10_blend_minus_item_cf"]
    assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]


BLEND_SIGNATURE = (
    {"holdings": [None, 22], "interest": [None, 22], "attributes": [None, 43]},
    {"scores": [None, 22], "because": [None, 22]},
)


def test_train_recommenders_cards_and_onnx_recomputed(caravan, tmp_path):
    """The ONNX error is recomputed here through the serving loader, not read from the card."""
    ctx = TrainContext(out_dir=tmp_path, cache_dir=tmp_path, quality=QualityLog(), seed=3)
    keep: dict = {}
    cards, rep, winner = R.train_recommenders(ctx, caravan, epochs=2, n_boot=30, keep=keep)
    assert {c.name for c in cards} == {"rec_interest", "rec_item_cf", "rec_content", "rec_two_tower"}
    assert winner == "rec_interest"
    h, a, i = keep["holdings"], keep["attributes"], keep["interest"]
    assert h.shape[0] > 400 and (i.sum(axis=1) > 0).mean() > 0.5  # the simulated sessions reach the graph
    for c in cards:
        model = keep["models"][c.name]
        blend = c.name == "rec_interest"
        assert c.task == "recommend" and _io(tmp_path / c.file) == (BLEND_SIGNATURE if blend else SIGNATURE)
        assert c.inputs[0].features == list(PRODUCT_IDS) and len(c.extra["attribute_means"]) == 43
        served = load_model(c, tmp_path)  # SHA-256 and input names checked
        feeds = {"holdings": h.astype(np.float32), "attributes": a.astype(np.float32)}
        if blend:
            feeds["interest"] = i.astype(np.float32)
        got = served.run(feeds)
        want = model.scores(h, a, i) if blend else model.scores(h, a)
        err = float(np.max(np.abs(got[0] - want)))
        assert err <= (1e-5 if c.family in ("content", "two_tower") else 1e-4), (c.name, err)
        assert c.metrics["onnx_max_abs_err"] == pytest.approx(err, rel=0.5, abs=1e-6)  # the card tells the truth
        if blend:
            assert c.extra["attributes_used"] == list(CUSTOMER_ATTRIBUTES)
            assert set(c.extra["interest"]) >= {"half_life_events", "action_strength", "beta", "alpha", "gamma"}
            # reasons: the graph's argmax equals numpy's wherever the top two sources are not a near tie
            src = np.concatenate([h, i], axis=1)
            terms = np.concatenate(
                [
                    src[:, :, None] * model.sources[None],
                    (model.gamma * model.content.prob(a) + model.cf.bias)[:, None, :],
                ],
                axis=1,
            )
            top2 = np.sort(terms, axis=1)[:, -2:, :]
            clear = (top2[:, 1] - top2[:, 0]) > 1e-4
            assert clear.mean() > 0.9
            assert (got[1][clear] == model.because(h, a, i)[clear]).all()
    for mode in ("attributes", "served"):
        assert rep["test"][mode]["none"]["popularity"]["n"] == h.shape[0]
    # order-blind models ignore the interest input: same metrics with or without simulated sessions
    t = rep["test"]["served"]
    assert t["simulated_target"]["rec_item_cf"] == t["none"]["rec_item_cf"]
    assert t["simulated_target"]["rec_interest"]["ndcg@5"] != t["none"]["rec_interest"]["ndcg@5"]


def test_interest_features_train_serve_parity(caravan, arrays):
    """The stream's interest rows (profile folded event by event, model_feeds) equal the training
    rows (interest_matrix over the same sessions) for the same card parameters."""
    h, a = arrays
    cf, content = RM.ItemCF(h[:3000]), RM.Content(h[:3000], a[:3000])
    blend = RM.InterestBlend(
        cf,
        content,
        gamma=0.5,
        beta=1.0,
        alpha=1.0,
        half_life=2.0,
        strength={"view": 1.0, "click": 2.0, "apply": 4.0, "spend": 2.0},
    )
    card = type(
        "Card",
        (),
        {
            "inputs": [type("T", (), {"name": n})() for n in ("holdings", "interest", "attributes")],
            "extra": {"interest": blend.params(), "attribute_means": list(a[:3000].mean(0))},
        },
    )()
    rng = np.random.default_rng(5)
    sessions = [
        [
            [PRODUCT_IDS[int(j)], str(rng.choice(["view", "click", "apply", "spend"])), ""]
            for j in rng.integers(0, 22, size=int(rng.integers(0, 14)))
        ]
        for _ in range(50)
    ]
    profiles = []
    for s in sessions:
        p = UserProfile()
        for pid, action, note in s:
            p = apply_event(p, pid, action, note)
        profiles.append(p)
    served = model_feeds(card, profiles)["interest"]
    trained = R.interest_matrix([s[-RECENT_CAP:] for s in sessions], 2.0, blend.strength)
    np.testing.assert_array_equal(served, trained)


def test_movielens_gru_candidate_small(cache):
    """The evaluation-only GRU runs on the benchmark's own targets and negatives."""
    m = products.load_movielens(cache, QualityLog())
    m = m[m["userId"] <= 60]
    ctx = TrainContext(out_dir=cache, cache_dir=cache, quality=QualityLog())
    res = movielens_benchmark(ctx, m, n_boot=20, gru_epochs=1)
    plain = movielens_benchmark(ctx, m, n_boot=20)
    assert res["gru"]["n"] == 60 and 0 <= res["gru"]["ndcg@10"] <= res["gru"]["hr@10"] <= 1
    assert res["item_cf"] == plain["item_cf"]  # same targets and negatives with or without it
    d = res["ndcg@10_gru_minus_blend"]
    assert d["models"] == ["gru", res["chosen_on_validation"]["blend"]]
