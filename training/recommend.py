"""Recommenders (the stream's ``recommend`` slot), caravan purchase propensity, and a MovieLens
benchmark.

Caravan (ISLR/Caravan = the CoIL 2000 training customers): the 22 catalogue products, holding =
policy count > 0 (caravan = ``Purchase``). Customers are split 70/10/20 (train/validation/test,
fixed seed). Three recommenders with one ONNX signature so the stream can swap them:

    inputs  holdings   float32 [None, 22]  0/1 in PRODUCT_IDS order
            attributes float32 [None, 43]  CUSTOMER_ATTRIBUTES order, raw values
    output  scores     float32 [None, 22]  higher = recommend first

* ``rec_item_cf``: item-item collaborative filtering, scores = holdings @ S with S the cosine
  similarity of product columns (zero diagonal) plus a tiny popularity prior that breaks ties
  (a customer holding nothing gets the popularity ranking); ``attributes`` is unused;
* ``rec_content``: content-based, one L2 logistic model per product on the standardised customer
  attributes (the product's own "profile" over customer attributes); ``holdings`` only masks;
* ``rec_two_tower``: a Keras two-tower model: customer tower (holdings + standardised attributes
  -> 64 -> 32) and item tower (product-id embedding + business-line embedding, the product's
  content), score = sigmoid(user . item + bias); trained as a denoising recommender (held
  products dropped from the input at random, all held products as targets).

In every graph held products are pushed down by ``HELD_PENALTY`` (scores - 100 * holdings) so
a consumer that forgets to filter them still never recommends something already held.

Evaluation: every test customer with >= 2 products has one held product hidden (seeded); the
model ranks the products the customer does not (visibly) hold; hit rate and NDCG at k = 3 and 5
with 95% bootstrap CIs over customers, against a popularity baseline. Ties count against the
model. The default ``recommend`` model is the best *validation* NDCG@5 (test figures reported).

``caravan_purchase`` (task ``purchase_propensity``) lives in ``training.propensity``; this job
trains it on the same Caravan frame and puts its section in the report.

MovieLens (dslabs, 100k ratings): leave-last-out, 99 sampled unseen negatives per user, HR@10 and
NDCG@10 for item-item CF vs popularity (report only).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from stream.core.manifest import ModelCard, TensorSpec
from stream.core.products import CATALOGUE, CUSTOMER_ATTRIBUTES, LINES, PRODUCT_IDS
from training import propensity
from training.export import OPSET, data_fingerprint, export_keras, make_card, reference_distribution, save_graph
from training.job import JobResult, TrainContext
from training.risk import (
    Logistic, _preprocess_layer, auc, bootstrap_ci, check_parity, fit_mlp, keras_predict, set_seed, stratified_split,
)

HELD_PENALTY = 100.0
KS = (3, 5)
N_P = len(PRODUCT_IDS)
N_A = len(CUSTOMER_ATTRIBUTES)

REC_INPUTS = [
    TensorSpec("holdings", [None, N_P], features=list(PRODUCT_IDS)),
    TensorSpec("attributes", [None, N_A], features=list(CUSTOMER_ATTRIBUTES)),
]
REC_OUTPUTS = [TensorSpec("scores", [None, N_P], meaning=[f"score for {p} (held products: -{HELD_PENALTY:g})"
                                                           for p in PRODUCT_IDS])]


# ====================================================================== evaluation

def hide_one(holdings: np.ndarray, seed: int, min_held: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows holding >= ``min_held`` products, hide one held product (uniformly, seeded).

    Returns (row indices, input holdings with the product removed, hidden product index).
    """
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(holdings.sum(axis=1) >= min_held)
    h_in = holdings[rows].copy()
    hidden = np.empty(len(rows), dtype=np.int64)
    for i in range(len(rows)):
        held = np.flatnonzero(h_in[i] > 0)
        hidden[i] = held[int(rng.integers(len(held)))]
        h_in[i, hidden[i]] = 0.0
    return rows, h_in, hidden


def hidden_rank(scores: np.ndarray, h_in: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """1-based rank of the hidden product among the products not in ``h_in`` (ties count against it)."""
    scores = np.asarray(scores, np.float64)
    s_h = scores[np.arange(len(hidden)), hidden][:, None]
    cand = h_in <= 0
    cand[np.arange(len(hidden)), hidden] = False
    return 1 + ((scores >= s_h) & cand).sum(axis=1)


def rank_metrics(ranks: np.ndarray, ks: Sequence[int] = KS, seed: int = 7, n_boot: int = 1000) -> dict:
    """Hit rate and NDCG at each k (one relevant item: NDCG = 1/log2(rank+1) if rank <= k), with CIs."""
    ranks = np.asarray(ranks)
    out = {"n": int(len(ranks)), "mean_rank": float(ranks.mean())}
    for k in ks:
        hit = (ranks <= k).astype(np.float64)
        ndcg = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
        for name, v in ((f"hr@{k}", hit), (f"ndcg@{k}", ndcg)):
            out[name] = float(v.mean())
            out[f"{name}_ci95"] = list(bootstrap_ci(np.mean, v, n=n_boot, seed=seed))
    return out


# ================================================================= ONNX (two inputs)

def export_recommender_linear(path: Path, *, item_sim: np.ndarray | None = None, attr_w: np.ndarray | None = None,
                              bias: np.ndarray, mean: np.ndarray | None = None, scale: np.ndarray | None = None,
                              sigmoid: bool = False, held_penalty: float = HELD_PENALTY) -> Path:
    """scores = act(holdings @ S + ((attributes - mu) / sigma) @ W + b) - penalty * holdings.

    Either term may be absent; both inputs are always declared so every recommender has the
    same signature.
    """
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(bias, np.float32).reshape(1, N_P), "B"),
             numpy_helper.from_array(np.full((1, 1), held_penalty, np.float32), "PENALTY")]
    nodes, terms = [], []
    if item_sim is not None:
        inits.append(numpy_helper.from_array(np.asarray(item_sim, np.float32), "S"))
        nodes.append(helper.make_node("MatMul", ["holdings", "S"], ["cf"]))
        terms.append("cf")
    if attr_w is not None:
        inits += [numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, N_A), "MU"),
                  numpy_helper.from_array(np.asarray(scale, np.float32).reshape(1, N_A), "SIGMA"),
                  numpy_helper.from_array(np.asarray(attr_w, np.float32), "W")]
        nodes += [helper.make_node("Sub", ["attributes", "MU"], ["a_c"]),
                  helper.make_node("Div", ["a_c", "SIGMA"], ["a_z"]),
                  helper.make_node("MatMul", ["a_z", "W"], ["content"])]
        terms.append("content")
    acc = terms[0]
    for t in terms[1:]:
        nodes.append(helper.make_node("Add", [acc, t], [f"{acc}_{t}"]))
        acc = f"{acc}_{t}"
    nodes.append(helper.make_node("Add", [acc, "B"], ["logit"]))
    raw = "logit"
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["logit"], ["prob"]))
        raw = "prob"
    nodes += [helper.make_node("Mul", ["holdings", "PENALTY"], ["held_pen"]),
              helper.make_node("Sub", [raw, "held_pen"], ["scores"])]
    graph = helper.make_graph(
        nodes, "recommender",
        [helper.make_tensor_value_info("holdings", TensorProto.FLOAT, [None, N_P]),
         helper.make_tensor_value_info("attributes", TensorProto.FLOAT, [None, N_A])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, N_P])], inits)
    return save_graph(graph, path, OPSET)


def onnx_scores(path: Path, holdings: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    from training.export import onnx_run

    return onnx_run(path, {"holdings": np.asarray(holdings, np.float32), "attributes": np.asarray(attributes, np.float32)})[0]


# ===================================================================== recommenders

class Popularity:
    family = "popularity"

    def __init__(self, h_train: np.ndarray):
        self.pop = h_train.mean(axis=0)

    def scores(self, h: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.tile(self.pop, (len(h), 1)) - HELD_PENALTY * h


class ItemCF:
    family = "item_cf"

    def __init__(self, h_train: np.ndarray, prior: float = 1e-3):
        h = np.asarray(h_train, np.float64)
        co = h.T @ h
        norm = np.sqrt(np.diag(co))
        norm = np.where(norm > 0, norm, 1.0)
        self.sim = co / norm[:, None] / norm[None, :]
        np.fill_diagonal(self.sim, 0.0)
        self.bias = prior * h.mean(axis=0)          # popularity tie-breaker, far below any similarity

    def raw(self, h: np.ndarray) -> np.ndarray:
        return np.asarray(h, np.float64) @ self.sim + self.bias

    def scores(self, h, a):
        return self.raw(h) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(path, item_sim=self.sim, bias=self.bias)


class Content:
    """Per-product L2 logistic regression on standardised customer attributes."""

    family = "content"

    def __init__(self, h_train: np.ndarray, a_train: np.ndarray, C: float = 0.05):
        from sklearn.linear_model import LogisticRegression

        a = np.asarray(a_train, np.float64)
        self.mean = a.mean(axis=0)
        sd = a.std(axis=0)
        self.scale = np.where(sd > 0, sd, 1.0)
        z = (a - self.mean) / self.scale
        self.w = np.zeros((N_A, N_P))
        self.b = np.zeros(N_P)
        for j in range(N_P):
            y = h_train[:, j] > 0
            if y.sum() < 2 or (~y).sum() < 2:               # too rare to fit: prior only
                self.b[j] = math.log((y.sum() + 0.5) / ((~y).sum() + 0.5))
                continue
            m = LogisticRegression(C=C, max_iter=2000).fit(z, y)
            self.w[:, j] = m.coef_[0]
            self.b[j] = m.intercept_[0]

    def prob(self, a: np.ndarray) -> np.ndarray:
        z = (np.asarray(a, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.w + self.b)))

    def scores(self, h, a):
        return self.prob(a) - HELD_PENALTY * h

    def export(self, path: Path) -> Path:
        return export_recommender_linear(path, attr_w=self.w, bias=self.b, mean=self.mean, scale=self.scale,
                                         sigmoid=True)


def _item_tower_layer():
    import keras
    from keras import ops

    class ItemTower(keras.layers.Layer):
        """Item vectors = id embedding + business-line embedding (content); returns user . item + bias."""

        def __init__(self, dim: int, line_onehot: np.ndarray, seed: int = 7, **kw):
            super().__init__(**kw)
            self.dim = dim
            self._lines0 = np.asarray(line_onehot, np.float32)
            self.seed = seed

        def build(self, input_shape):
            init = keras.initializers.GlorotUniform(seed=self.seed)
            self.item_id = self.add_weight(shape=(N_P, self.dim), initializer=init, name="item_id")
            self.line_emb = self.add_weight(shape=(self._lines0.shape[1], self.dim),
                                            initializer=keras.initializers.GlorotUniform(seed=self.seed + 1), name="line")
            self.lines = self.add_weight(shape=self._lines0.shape, initializer=keras.initializers.Constant(self._lines0),
                                         trainable=False, name="line_onehot")
            self.bias = self.add_weight(shape=(N_P,), initializer="zeros", name="item_bias")

        def call(self, u):
            items = self.item_id + ops.matmul(self.lines, self.line_emb)
            return ops.matmul(u, ops.transpose(items)) + self.bias

    return ItemTower


class TwoTower:
    family = "two_tower"

    def __init__(self, h_tr, a_tr, h_va, a_va, seed: int, epochs: int = 40, copies: int = 4, dim: int = 32):
        import keras
        from keras import ops

        set_seed(seed)
        rng = np.random.default_rng(seed)
        self.a_mean = a_tr.mean(axis=0)
        sd = a_tr.std(axis=0)
        self.a_scale = np.where(sd > 0, sd, 1.0)
        line_onehot = np.array([[float(p.line == ln) for ln in LINES] for p in CATALOGUE], np.float32)

        h_in = keras.Input((N_P,), name="holdings")
        a_in = keras.Input((N_A,), name="attributes")
        a_z = _preprocess_layer()(self.a_mean, self.a_scale, name="attr_standardise")(a_in)
        u = keras.layers.Concatenate()([h_in, a_z])
        u = keras.layers.Dense(64, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4),
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(u)
        u = keras.layers.Dropout(0.2, seed=seed + 1)(u)
        u = keras.layers.Dense(dim, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))(u)
        logits = _item_tower_layer()(dim, line_onehot, seed=seed + 3, name="item_tower")(u)
        prob = keras.layers.Activation("sigmoid", name="prob")(logits)
        self.model = keras.Model([h_in, a_in], prob)
        self.model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
        # Serving graph: same weights, held products pushed down.
        served = keras.layers.Lambda(lambda t: t[0] - HELD_PENALTY * t[1], name="scores")([prob, h_in])
        self.serving = keras.Model([h_in, a_in], served)

        x_h, x_a, y = self._denoise(h_tr, a_tr, rng, copies)
        v_h, v_a, v_y = self._denoise(h_va, a_va, rng, 1)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)
        hist = self.model.fit([x_h, x_a], y, validation_data=([v_h, v_a], v_y), epochs=epochs, batch_size=256,
                              verbose=0, callbacks=[stop], shuffle=True)
        self.epochs = len(hist.history["loss"])
        del ops

    @staticmethod
    def _denoise(h, a, rng, copies):
        """Each copy drops every held product with probability 1/2 (at least one kept out when >= 2 held)."""
        hs, as_, ys = [], [], []
        for _ in range(copies):
            drop = (rng.random(h.shape) < 0.5) & (h > 0)
            hs.append(np.where(drop, 0.0, h))
            as_.append(a)
            ys.append(h)
        return (np.concatenate(hs).astype(np.float32), np.concatenate(as_).astype(np.float32),
                np.concatenate(ys).astype(np.float32))

    def scores(self, h, a):
        out = self.serving([np.asarray(h, np.float32), np.asarray(a, np.float32)], training=False)
        return np.asarray(out)

    def export(self, path: Path) -> Path:
        return export_keras(self.serving, path, REC_INPUTS, output_names=("scores",))


# ========================================================================== caravan

def _recommender_cards(ctx, models: dict, h_tr, a_tr, h_te, a_te, metrics: dict, extra_common: dict) -> list[ModelCard]:
    cards = []
    ref = reference_distribution(np.concatenate([h_tr, a_tr], axis=1), list(PRODUCT_IDS) + list(CUSTOMER_ATTRIBUTES))
    fp = data_fingerprint(h_tr, a_tr)
    baseline = [float(v) for v in np.concatenate([h_tr.mean(0), a_tr.mean(0)])]
    labels = {p.product_id: f"holds {p.name.lower()}" for p in CATALOGUE}
    for name, model in models.items():
        path = ctx.out_dir / f"{name}.onnx"
        model.export(path)
        got = onnx_scores(path, h_te, a_te)
        want = model.scores(h_te, a_te)
        err = float(np.max(np.abs(got - want)))
        tol = 1e-4 if model.family == "item_cf" else 1e-5      # item-CF scores are sums of up to 21 cosines
        if not err <= tol:
            raise AssertionError(f"{name}: ONNX differs from the trained model by {err:.2e}")
        m = {k: v for k, v in metrics[name].items()}
        m["onnx_max_abs_err"] = err
        cards.append(make_card(
            name, "recommend", model.family, path, REC_INPUTS, REC_OUTPUTS, metrics=m, reference_distribution=ref,
            data_fingerprint=fp, baseline=baseline, feature_labels=labels,
            extra={**extra_common, **({"epochs": model.epochs} if hasattr(model, "epochs") else {})}))
    return cards


def train_recommenders(ctx: TrainContext, df=None, *, export: bool = True, epochs: int = 40, n_boot: int = 1000):
    from training.data import products

    t0 = time.time()
    df = df if df is not None else products.load_caravan(ctx.cache_dir, ctx.quality)
    H = products.caravan_holdings(df)
    A = products.caravan_attributes(df)
    rng = np.random.default_rng(ctx.seed)
    perm = rng.permutation(len(df))
    n_te, n_va = int(0.2 * len(df)), int(0.1 * len(df))
    te, va, tr = np.sort(perm[:n_te]), np.sort(perm[n_te:n_te + n_va]), np.sort(perm[n_te + n_va:])

    models = {
        "rec_item_cf": ItemCF(H[tr]),
        "rec_content": Content(H[tr], A[tr]),
        "rec_two_tower": TwoTower(H[tr], A[tr], H[va], A[va], seed=ctx.seed, epochs=epochs),
    }
    pop = Popularity(H[tr])
    attr_means = A[tr].mean(axis=0)
    evals = {}
    for split, idx, seed in (("validation", va, ctx.seed + 1), ("test", te, ctx.seed + 2)):
        rows, h_in, hidden = hide_one(H[idx], seed)
        for mode, a_in in (("", A[idx][rows]), ("_served", np.tile(attr_means, (len(rows), 1)))):
            res = {}
            for name, model in {"popularity": pop, **models}.items():
                res[name] = rank_metrics(hidden_rank(model.scores(h_in, a_in), h_in, hidden), seed=ctx.seed,
                                         n_boot=n_boot if split == "test" else 200)
            evals[split + mode] = res
    # The stream knows holdings but not socio-demographics (it feeds the training means), so the
    # default is chosen on validation *as served*.
    val = evals["validation_served"]
    winner = max(models, key=lambda n: (val[n]["ndcg@5"], val[n]["hr@5"]))
    report = {"customers": int(len(df)), "split": {"train": int(len(tr)), "validation": int(len(va)), "test": int(len(te))},
              "eval_customers_test": evals["test"]["popularity"]["n"], "validation": evals["validation"],
              "test": evals["test"], "validation_served": evals["validation_served"], "test_served": evals["test_served"],
              "default": winner,
              "default_rule": "highest validation NDCG@5 as served (attributes unknown: training means)",
              "product_share_train": {p: float(v) for p, v in zip(PRODUCT_IDS, H[tr].mean(0))}}
    cards = []
    if export:
        metrics = {n: {**{k: v for k, v in evals["test"][n].items()},
                       "validation_ndcg@5": evals["validation"][n]["ndcg@5"],
                       "served_test": {k: evals["test_served"][n][k] for k in ("hr@3", "hr@5", "ndcg@3", "ndcg@5")},
                       "popularity_test": {k: evals["test"]["popularity"][k] for k in ("hr@3", "hr@5", "ndcg@3", "ndcg@5")}}
                   for n in models}
        extra = {"source": "ISLR/Caravan (CoIL 2000 training customers)",
                 "holding_rule": "A* policy count > 0; caravan = Purchase == 'Yes'",
                 "evaluation": "hide one held product per test customer with >= 2 products; rank among not-held products",
                 "held_penalty": HELD_PENALTY,
                 # what the stream feeds as ``attributes`` for live users (no socio-demographics known)
                 "attribute_means": [float(v) for v in attr_means]}
        cards = _recommender_cards(ctx, models, H[tr], A[tr], H[te], A[te], metrics, extra)
    report["seconds"] = round(time.time() - t0, 1)
    return cards, report, winner


# ========================================================================= MovieLens

def movielens_benchmark(ctx: TrainContext, ratings=None, n_neg: int = 99, n_boot: int = 1000) -> dict:
    """Leave-last-out on implicit interactions; rank the held-out item among 99 unseen sampled items."""
    import scipy.sparse as sp

    from training.data import products

    t0 = time.time()
    r = ratings if ratings is not None else products.load_movielens(ctx.cache_dir, ctx.quality)
    r = r.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    users = r["userId"].to_numpy()
    u_idx = np.unique(users, return_inverse=True)[1]
    items, i_idx = np.unique(r["movieId"].to_numpy(), return_inverse=True)
    n_u, n_i = int(u_idx.max()) + 1, len(items)
    last = np.r_[u_idx[1:] != u_idx[:-1], True]                 # last interaction of each user (sorted by time)
    test_u, test_i = u_idx[last], i_idx[last]
    keep = ~last
    X = sp.csr_matrix((np.ones(keep.sum()), (u_idx[keep], i_idx[keep])), shape=(n_u, n_i))
    X.data[:] = 1.0
    X.sum_duplicates()
    X.data[:] = 1.0
    count = np.asarray(X.sum(axis=0)).ravel()
    norm = np.sqrt(np.where(count > 0, count, 1.0))
    # item-item cosine CF, score(u, i) = sum_{j in hist(u)} cos(i, j), without the item x item matrix:
    # cos(i, j) = sum_v X[v,i] X[v,j] / (n_i n_j)  =>  scores = (X @ Xn^T) @ Xn with Xn = X diag(1/n).
    Xn = (X @ sp.diags(1.0 / norm)).tocsc()
    scores = (X @ Xn.T).toarray() @ Xn.toarray()             # users x items (671 x 9,066)
    rng = np.random.default_rng(ctx.seed)
    seen = [set(X.indices[X.indptr[u]:X.indptr[u + 1]]) for u in range(n_u)]
    ranks_cf, ranks_pop = [], []
    for u, held_out in zip(test_u, test_i):
        negs = []
        while len(negs) < n_neg:
            c = int(rng.integers(n_i))
            if c != held_out and c not in seen[u] and c not in negs:
                negs.append(c)
        cand = np.array([held_out] + negs)
        cf = scores[u, cand]
        pop = count[cand]
        ranks_cf.append(1 + int((cf[1:] >= cf[0]).sum()))
        ranks_pop.append(1 + int((pop[1:] >= pop[0]).sum()))
    res = {"users": int(n_u), "items": int(n_i), "interactions": int(len(r)), "negatives": n_neg,
           "item_cf": rank_metrics(np.array(ranks_cf), ks=(10,), seed=ctx.seed, n_boot=n_boot),
           "popularity": rank_metrics(np.array(ranks_pop), ks=(10,), seed=ctx.seed, n_boot=n_boot)}
    res["seconds"] = round(time.time() - t0, 1)
    return res


# ============================================================================== job

def train(ctx: TrainContext) -> JobResult:
    from training.data import products

    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    df = products.load_caravan(ctx.cache_dir, ctx.quality)
    cards, rec, winner = train_recommenders(ctx, df)
    c2, purchase = propensity.train_caravan_purchase(ctx, df)
    ml = movielens_benchmark(ctx)
    report = {"caravan_recommenders": rec, "caravan_purchase": purchase, "movielens": ml}
    return JobResult(cards=cards + c2, defaults={"recommend": winner}, report_md=render_md(report), report=report)


def _fmt(m: dict, key: str) -> str:
    lo, hi = m[f"{key}_ci95"]
    return f"{m[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def render_md(rep: dict) -> str:
    r = rep["caravan_recommenders"]
    L = ["## Recommenders and purchase propensity", "",
         "### Caravan product recommenders (real data: ISLR/Caravan, 22 products)", "",
         f"Customers split {r['split']['train']}/{r['split']['validation']}/{r['split']['test']} (train/validation/test). "
         f"Protocol: each test customer holding >= 2 products ({r['eval_customers_test']} customers) has one held product "
         "hidden; the model ranks every product the customer does not visibly hold (ties count against the model). "
         "95% bootstrap CIs over customers.", "",
         "| model | HR@3 | NDCG@3 | HR@5 | NDCG@5 | mean rank | val NDCG@5 |", "|---|---|---|---|---|---:|---:|"]
    for name, m in r["test"].items():
        L.append(f"| `{name}` | {_fmt(m, 'hr@3')} | {_fmt(m, 'ndcg@3')} | {_fmt(m, 'hr@5')} | {_fmt(m, 'ndcg@5')} | "
                 f"{m['mean_rank']:.2f} | {r['validation'][name]['ndcg@5']:.3f} |")
    L += ["", "As served by the stream (live users have holdings but no socio-demographics; the card's "
          "`attribute_means` stand in), same test customers:", "",
          "| model | HR@3 | NDCG@3 | HR@5 | NDCG@5 | val NDCG@5 |", "|---|---|---|---|---|---:|"]
    for name, m in r["test_served"].items():
        L.append(f"| `{name}` | {_fmt(m, 'hr@3')} | {_fmt(m, 'ndcg@3')} | {_fmt(m, 'hr@5')} | {_fmt(m, 'ndcg@5')} | "
                 f"{r['validation_served'][name]['ndcg@5']:.3f} |")
    L += ["", f"Default `recommend` = `{r['default']}` ({r['default_rule']}). Product holdings are dominated by three "
          "products (fire, car, private liability: 40–54% of customers), so popularity is a strong baseline here; "
          "overlapping CIs mean the top models are statistically tied on this test set.", ""]
    L += [propensity.render_md(rep["caravan_purchase"])]
    ml = rep["movielens"]
    L += ["### MovieLens (dslabs/movielens, report only)", "",
          f"{ml['interactions']:,} ratings, {ml['users']} users, {ml['items']:,} movies. Leave-last-out (each user's latest "
          f"rating held out), ranked against {ml['negatives']} sampled unseen movies.", "",
          "| model | HR@10 | NDCG@10 |", "|---|---|---|"]
    for name in ("item_cf", "popularity"):
        m = ml[name]
        L.append(f"| {name} | {_fmt(m, 'hr@10')} | {_fmt(m, 'ndcg@10')} |")
    return "\n".join(L) + "\n"
