"""Does the order of recent interactions help? Measured where real ordered interactions exist.

MovieLens (dslabs, 100k timestamped ratings, each rating an implicit interaction): per user,
chronological leave-last-out: the latest interaction is the test target, the one before it the
validation target, and only interactions *before* the target are history. Each target is ranked
against 99 sampled movies the user never rated; HR@10 and NDCG@10 with bootstrap CIs over users.

Models (all item-to-item cosine on the history before the target, so they differ only in *which*
past interactions count and how much):

* ``popularity``: interaction count;
* ``item_cf``: the whole history, uniform weights (order-blind, the holdings model's form);
* ``recent_uniform``: the last ``RECENT_CAP`` interactions, uniform weights (order-blind inside
  the window);
* ``recent_decay``: the last ``RECENT_CAP`` with recency decay (``stream.core.interest``, the same
  function the stream uses; half-life chosen on validation);
* ``blend``: ``item_cf`` + beta * ``recent_decay`` (the served form: holdings + interest; half-life
  and beta chosen on validation);
* ``transitions``: order-aware by construction: recent items (decayed) through *directed*
  transitions "j was followed by c within 3 steps" (a first-order sequential model, the Markov part
  of FPMC), and ``blend_transitions`` = ``item_cf`` + beta * ``transitions``.

A neural sequence encoder (GRU / self-attention) was not trained this round; see the report.
"""

from __future__ import annotations

import time

import numpy as np

from stream.core.interest import recency_weights
from stream.core.profiles import RECENT_CAP
from training.job import TrainContext
from training.recommend_eval import rank_metrics
from training.risk import bootstrap_ci

HALF_LIVES = (0.0, 2.0, 8.0)
TRANSITION_WINDOW = 3
BETAS = (1.0, 4.0, 16.0, 64.0)


def _stage(u_idx, i_idx, from_end, n_u, n_i, k, n_neg, rng, seen_all):
    """Targets at position ``k`` from the end; history = everything older. Returns what scoring needs."""
    import scipy.sparse as sp

    hist = from_end > k
    target = np.full(n_u, -1)
    target[u_idx[from_end == k]] = i_idx[from_end == k]
    X = sp.csr_matrix((np.ones(hist.sum()), (u_idx[hist], i_idx[hist])), shape=(n_u, n_i))
    X.data[:] = 1.0
    count = np.asarray(X.sum(axis=0)).ravel()
    Xn = (X @ sp.diags(1.0 / np.sqrt(np.where(count > 0, count, 1.0)))).tocsr()
    cands = np.empty((n_u, n_neg + 1), dtype=np.int64)
    for u in range(n_u):
        negs: list[int] = []
        while len(negs) < n_neg:
            c = int(rng.integers(n_i))
            if c not in seen_all[u] and c not in negs:
                negs.append(c)
        cands[u] = [target[u]] + negs
    # the last RECENT_CAP history events per user, oldest first (from_end counts down to k+1)
    recent = hist & (from_end <= k + RECENT_CAP)
    # directed transitions: j followed within TRANSITION_WINDOW steps by c, in the history (rows are
    # sorted by user then time), normalised like the cosine: T[j, c] / sqrt(n_j n_c)
    src, dst = [], []
    for d in range(1, TRANSITION_WINDOW + 1):
        ok = (u_idx[:-d] == u_idx[d:]) & hist[:-d] & hist[d:]
        src.append(i_idx[:-d][ok])
        dst.append(i_idx[d:][ok])
    src, dst = np.concatenate(src), np.concatenate(dst)
    inv = 1.0 / np.sqrt(np.where(count > 0, count, 1.0))
    T = sp.csr_matrix((inv[src] * inv[dst], (src, dst)), shape=(n_i, n_i))
    return {
        "X": X,
        "Xn": Xn,
        "Xd": Xn.toarray(),
        "T": T,
        "count": count,
        "cands": cands,
        "recent": (u_idx[recent], i_idx[recent], from_end[recent] - k - 1),
    }


def _cf(W, st) -> np.ndarray:
    """score(u, c) = sum_j W[u, j] cos(j, c) for each user's candidates, without the item x item matrix."""
    uv = (W @ st["Xn"].T).toarray()  # (users, users) through the co-raters
    xd, cands = st["Xd"], st["cands"]
    return np.stack([uv[u] @ xd[:, cands[u]] for u in range(len(cands))])


def _markov(W, st) -> np.ndarray:
    """score(u, c) = sum_j W[u, j] T[j, c]: what tends to come *after* the user's recent items."""
    return np.take_along_axis((W @ st["T"]).toarray(), st["cands"], axis=1)


def _ranks(s: np.ndarray) -> np.ndarray:
    return 1 + (s[:, 1:] >= s[:, :1]).sum(axis=1)  # ties count against the target


def _recent_matrix(st, n_u, n_i, half_life):
    import scipy.sparse as sp

    u, i, age = st["recent"]
    # recency_weights takes a sequence oldest-first; a constant-strength sequence of length
    # RECENT_CAP gives the weight of each age (age 0 = newest = last element).
    w_by_age = recency_weights(["view"] * RECENT_CAP, half_life)[::-1]
    return sp.csr_matrix((w_by_age[age], (u, i)), shape=(n_u, n_i))


def movielens_benchmark(
    ctx: TrainContext, ratings=None, n_neg: int = 99, n_boot: int = 1000, gru_epochs: int = 0
) -> dict:
    """``gru_epochs > 0`` adds the GRU candidate (``training.recommend_gru``; evaluation only)."""
    from training.data import products

    t0 = time.time()
    r = ratings if ratings is not None else products.load_movielens(ctx.cache_dir, ctx.quality)
    r = r.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    u_idx = np.unique(r["userId"].to_numpy(), return_inverse=True)[1]
    items, i_idx = np.unique(r["movieId"].to_numpy(), return_inverse=True)
    n_u, n_i = int(u_idx.max()) + 1, len(items)
    per_user = np.bincount(u_idx, minlength=n_u)
    from_end = (np.repeat(np.cumsum(per_user), per_user) - 1) - np.arange(len(u_idx))  # 0 = user's latest
    seen_all = [set() for _ in range(n_u)]
    for u, i in zip(u_idx, i_idx):
        seen_all[u].add(int(i))
    rng = np.random.default_rng(ctx.seed)
    gru = None
    if gru_epochs > 0:
        from training.recommend_gru import gru_scorer

        gru = gru_scorer(u_idx, i_idx, from_end, n_i, ctx.seed, gru_epochs)
    ranks: dict[str, dict[str, np.ndarray]] = {}
    for stage, k in (("validation", 1), ("test", 0)):
        st = _stage(u_idx, i_idx, from_end, n_u, n_i, k, n_neg, rng, seen_all)
        cf_all = _cf(st["X"], st)
        rmats = {hl: _recent_matrix(st, n_u, n_i, hl) for hl in HALF_LIVES}
        rec = {hl: _cf(m, st) for hl, m in rmats.items()}
        mk = {hl: _markov(m, st) for hl, m in rmats.items()}
        rk = {
            "popularity": _ranks(st["count"][st["cands"]]),
            "item_cf": _ranks(cf_all),
            "recent_uniform": _ranks(rec[0.0]),
        }
        rk |= {f"recent_decay@{hl:g}": _ranks(rec[hl]) for hl in HALF_LIVES if hl > 0}
        rk |= {f"blend@{hl:g},{b:g}": _ranks(cf_all + b * rec[hl]) for hl in HALF_LIVES for b in BETAS}
        rk |= {f"transitions@{hl:g}": _ranks(mk[hl]) for hl in HALF_LIVES}
        rk |= {f"blend_transitions@{hl:g},{b:g}": _ranks(cf_all + b * mk[hl]) for hl in HALF_LIVES for b in BETAS}
        if gru is not None:
            rk["gru"] = _ranks(gru(k, st["cands"]))
        ranks[stage] = rk
    ndcg = lambda rk: float(np.where(rk <= 10, 1 / np.log2(rk + 1.0), 0).mean())  # noqa: E731
    val = ranks["validation"]
    best_decay = max((n for n in val if n.startswith("recent_decay@")), key=lambda n: ndcg(val[n]))
    best_blend = max((n for n in val if n.startswith("blend@")), key=lambda n: ndcg(val[n]))
    best_tr = max((n for n in val if n.startswith("transitions@")), key=lambda n: ndcg(val[n]))
    best_btr = max((n for n in val if n.startswith("blend_transitions@")), key=lambda n: ndcg(val[n]))
    hl_s, beta_s = best_blend.removeprefix("blend@").split(",")
    chosen = {
        "popularity": "popularity",
        "item_cf": "item_cf",
        "recent_uniform": "recent_uniform",
        "recent_decay": best_decay,
        "blend": best_blend,
        "transitions": best_tr,
        "blend_transitions": best_btr,
    }
    if gru is not None:
        chosen["gru"] = "gru"
    test = ranks["test"]
    res = {
        "users": int(n_u),
        "items": int(n_i),
        "interactions": int(len(r)),
        "negatives": n_neg,
        "recent_cap": RECENT_CAP,
        "chosen_on_validation": chosen,
        "blend_half_life": float(hl_s),
        "blend_beta": float(beta_s),
        "validation_ndcg@10": {n: ndcg(v) for n, v in val.items()},
    }
    for name, key in chosen.items():
        res[name] = rank_metrics(test[key], ks=(10,), seed=ctx.seed, n_boot=n_boot)
    # paired differences over the same users: does order / recency help?
    g = lambda rk: np.where(rk <= 10, 1 / np.log2(rk + 1.0), 0)  # noqa: E731
    for name, a, b in (
        ("blend_minus_item_cf", chosen["blend"], "item_cf"),
        ("decay_minus_uniform", chosen["recent_decay"], "recent_uniform"),
        ("transitions_minus_recent_decay", best_tr, best_decay),
        ("blend_transitions_minus_blend", best_btr, best_blend),
        *((("gru_minus_blend", "gru", best_blend),) if gru is not None else ()),
        ("blend_no_decay_minus_item_cf", f"blend@0,{beta_s}", "item_cf"),
    ):
        d = g(test[a]) - g(test[b])
        res[f"ndcg@10_{name}"] = {
            "mean": float(d.mean()),
            "ci95": list(bootstrap_ci(np.mean, d, n=n_boot, seed=ctx.seed)),
            "models": [a, b],
        }
    res["seconds"] = round(time.time() - t0, 1)
    return res
