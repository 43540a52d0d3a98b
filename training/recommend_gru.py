"""A GRU over the last ``RECENT_CAP`` movies, as a neural sequence-aware candidate for the MovieLens
benchmark (``training.recommend_movielens``), on the same users, targets and sampled negatives.

Evaluation only, not part of ``finstream train`` (it would add minutes to the recommend job on two
cores): ``python -m training.recommend_gru [epochs]`` prints the benchmark with the GRU included.
Trained on every interaction before each user's validation target (next-item prediction, full
softmax over the movies), so neither the validation nor the test target is ever a training label.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from stream.core.profiles import RECENT_CAP


def _windows(pos, i_idx, start) -> np.ndarray:
    """Item ids (+1, 0 = padding) of the RECENT_CAP interactions before each position, oldest first."""
    x = np.zeros((len(pos), RECENT_CAP), np.int32)
    for k in range(1, RECENT_CAP + 1):
        prev = pos - k
        ok = prev >= start[pos]
        x[ok, RECENT_CAP - k] = i_idx[prev[ok]] + 1
    return x


def gru_scorer(u_idx, i_idx, from_end, n_i: int, seed: int, epochs: int):
    """Fit the GRU; returns score(k, cands) for the targets at position ``k`` from each user's end."""
    import keras

    from training.risk import set_seed

    per_user = np.bincount(u_idx)
    start = np.repeat(np.cumsum(per_user) - per_user, per_user)
    pos = np.flatnonzero(from_end >= 2)
    x, y = _windows(pos, i_idx, start), i_idx[pos]
    keep = (x > 0).any(axis=1)
    set_seed(seed)
    inp = keras.Input((RECENT_CAP,), dtype="int32")
    h = keras.layers.Embedding(n_i + 1, 48, mask_zero=True)(inp)
    h = keras.layers.GRU(64, seed=seed)(h)
    model = keras.Model(inp, keras.layers.Dense(n_i)(h))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x[keep], y[keep], batch_size=512, epochs=epochs, verbose=0, shuffle=True)

    def score(k: int, cands: np.ndarray) -> np.ndarray:
        tp = np.flatnonzero(from_end == k)  # one per user, in user order
        logits = model.predict(_windows(tp, i_idx, start), verbose=0, batch_size=1024)
        return np.take_along_axis(logits, cands, axis=1)

    return score


def main(epochs: int = 3) -> None:
    from training.job import TrainContext
    from training.recommend_movielens import movielens_benchmark

    t0 = time.time()
    res = movielens_benchmark(TrainContext(out_dir=_cache(), cache_dir=_cache()), gru_epochs=epochs)
    for name in ("popularity", "item_cf", "recent_decay", "blend", "transitions", "gru"):
        m = res[name]
        print(
            f"{name:18s} HR@10 {m['hr@10']:.3f}  NDCG@10 {m['ndcg@10']:.3f} {[round(v, 3) for v in m['ndcg@10_ci95']]}"
        )
    d = res["ndcg@10_gru_minus_blend"]
    print(
        f"gru - blend NDCG@10 {d['mean']:+.4f} {[round(v, 4) for v in d['ci95']]}  ({time.time() - t0:.0f} s, {epochs} epochs)"
    )


def _cache():
    from pathlib import Path

    return Path.home() / ".cache" / "finstream" / "data"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
