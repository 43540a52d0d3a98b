"""Classification metrics with bootstrap intervals, and alert-threshold rules (all risk models).

Kept apart from the model code so the report, the tests and the propensity models use one
definition of AUC, PR-AUC, the bootstrap CI and "recall at an alert budget".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

N_BOOT = 1000


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC via average ranks (ties count half)."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n: int = N_BOOT,
    seed: int = 7,
    stratify: np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``metric(*arrays)`` over rows (resampled within ``stratify`` classes)."""
    rng = np.random.default_rng(seed)
    m = len(arrays[0])
    groups = [np.flatnonzero(stratify == v) for v in np.unique(stratify)] if stratify is not None else [np.arange(m)]
    vals = []
    for _ in range(n):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        v = metric(*(a[idx] for a in arrays))
        if not math.isnan(v):
            vals.append(v)
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, p)
    i = int(np.argmax(tpr - fpr))
    return float(min(thr[i], 1.0))


def precision_threshold(y: np.ndarray, p: np.ndarray, target: float, fallback_rate: float) -> tuple[float, str]:
    """Lowest threshold with precision >= target (max recall there), else the top-``fallback_rate`` quantile."""
    from sklearn.metrics import precision_recall_curve

    prec, _, thr = precision_recall_curve(y, p)
    ok = np.flatnonzero(prec[:-1] >= target)
    if len(ok):
        return float(thr[ok[0]]), f"lowest validation threshold with precision >= {target:.0%}"
    return float(
        np.quantile(p, 1 - fallback_rate)
    ), f"top {fallback_rate:.0%} of validation scores (precision target unreachable)"


def at_threshold(y: np.ndarray, p: np.ndarray, thr: float) -> dict:
    alert = p >= thr
    tp = int((alert & (y == 1)).sum())
    return {
        "threshold": float(thr),
        "alert_rate": float(alert.mean()),
        "precision": float(tp / max(int(alert.sum()), 1)),
        "recall": float(tp / max(int((y == 1).sum()), 1)),
    }


def classification_metrics(y: np.ndarray, p: np.ndarray, thr: float, seed: int, n_boot: int = N_BOOT) -> dict:
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    lo, hi = bootstrap_ci(auc, y, p, n=n_boot, seed=seed, stratify=y)
    plo, phi = bootstrap_ci(pr_auc, y, p, n=max(n_boot // 5, 100), seed=seed, stratify=y)
    return {
        "auc": auc(y, p),
        "auc_ci95": [lo, hi],
        "pr_auc": pr_auc(y, p),
        "pr_auc_ci95": [plo, phi],
        "brier": float(np.mean((p - y) ** 2)),
        "n": int(len(y)),
        "positives": int(y.sum()),
        "at_threshold": at_threshold(y, p, thr),
    }


def recall_at_budget(y: np.ndarray, p: np.ndarray, budget: float) -> float:
    """Share of positives among the top ``budget`` share of rows by score (the alert budget)."""
    y = np.asarray(y)
    k = max(int(round(budget * len(y))), 1)
    top = np.argsort(-np.asarray(p), kind="stable")[:k]
    return float(y[top].sum() / max(int(y.sum()), 1))
