"""How recommenders are scored: hide one held product and rank it (Caravan), with bootstrap CIs,
and the clearly *simulated* interest sessions used to exercise the interest input on Caravan
(the data has holdings but no events, so no real sequence exists there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.core.products import PRODUCT_IDS
from training.risk import bootstrap_ci

KS = (3, 5)


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


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k with one relevant item per row (model selection: no CIs needed)."""
    r = np.asarray(ranks, dtype=np.float64)
    return float(np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0).mean())


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


def simulate_sessions(
    h_in: np.ndarray, hidden: np.ndarray, seed: int, *, p_target: float, noise: tuple[int, int] = (0, 2)
) -> list[list[list[str]]]:
    """SIMULATED interest sessions (labelled as such in every report): with probability ``p_target``
    the customer viewed the product they hold but we hid (the one "about to be bought"), plus a
    uniform number in ``noise`` of views of random products they do not hold, in random order.
    ``p_target = 0`` is pure noise: it measures what irrelevant browsing costs the ranking."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(hidden)):
        free = np.flatnonzero(h_in[i] <= 0)
        free = free[free != hidden[i]]
        n_noise = int(rng.integers(noise[0], noise[1] + 1))
        items = list(rng.choice(free, size=min(n_noise, len(free)), replace=False))
        if rng.random() < p_target:
            items.append(hidden[i])
        rng.shuffle(items)
        out.append([[PRODUCT_IDS[int(j)], "view", ""] for j in items])
    return out
