"""Recommendation filtering: rank products, never recommend what the customer already holds."""
from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, held: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Per row, the k best (product index, score) pairs among products not held.

    ``held`` is an (N, P) 0/1 matrix. Ties break by catalogue order so output is deterministic.
    """
    masked = np.where(np.asarray(held) > 0, -np.inf, np.asarray(scores, dtype=np.float64))
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return [[(int(j), float(masked[i, j])) for j in row if np.isfinite(masked[i, j])] for i, row in enumerate(order)]
