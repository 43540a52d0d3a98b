"""Helpers shared by the risk and propensity jobs around their models: splits, ONNX parity,
permutation importance, report formatting. The model families themselves live in
``training.models`` (``Logistic``, ``MLP``, ``GBM``, ...); their old names are re-exported here for
the modules that import them from this one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from training.export import onnx_run
from training.models.gbm import single_thread  # noqa: F401  (re-exported)
from training.models.logistic import Logistic, export_log_linear, log_augment, skewed_columns  # noqa: F401
from training.models.mlp import _preprocess_layer, fit_mlp, keras_mlp, keras_predict, set_seed  # noqa: F401
from training.risk_metrics import auc


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    groups: dict[str, list[int]],
    metric: Callable = auc,
    repeats: int = 3,
    seed: int = 7,
) -> dict[str, float]:
    """Drop in ``metric`` when a group of columns is shuffled together (rows permuted), mean over repeats."""
    rng = np.random.default_rng(seed)
    base = metric(y, predict(x))
    out = {}
    for name, cols in groups.items():
        drops = []
        for _ in range(repeats):
            xp = x.copy()
            perm = rng.permutation(len(x))
            xp[:, cols] = x[perm][:, cols]
            drops.append(base - metric(y, predict(xp)))
        out[name] = float(np.mean(drops))
    return dict(sorted(out.items(), key=lambda t: -t[1]))


def column_groups(encoding: dict) -> dict[str, list[int]]:
    """Raw column -> indices of its encoded columns (numeric: one; categorical: its one-hots)."""
    groups, i = {}, 0
    for c in encoding["numeric"]:
        groups[c] = [i]
        i += 1
    for c, levels in encoding["categorical"].items():
        groups[c] = list(range(i, i + len(levels)))
        i += len(levels)
    return groups


def stratified_split(y: np.ndarray, seed: int, test: float = 0.2, val: float = 0.2):
    """Indices (train, val, test) stratified on y; val is a share of the whole."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, te = train_test_split(idx, test_size=test, stratify=y, random_state=seed)
    tr, va = train_test_split(rest, test_size=val / (1 - test), stratify=y[rest], random_state=seed + 1)
    return np.sort(tr), np.sort(va), np.sort(te)


def check_parity(
    path: Path, x: np.ndarray, expected: np.ndarray, name: str, tol: float = 1e-5, input_name: str = "features"
) -> float:
    got = onnx_run(path, {input_name: np.asarray(x, np.float32)})[0].reshape(-1)
    err = float(np.max(np.abs(got - np.asarray(expected).reshape(-1)))) if len(got) else 0.0
    if not err <= tol:
        raise AssertionError(f"{name}: ONNX differs from the trained model by {err:.2e} (> {tol})")
    return err


def _top(d: dict, k: int = 6) -> str:
    return ", ".join(f"{n} ({v:.3f})" for n, v in list(d.items())[:k])


def _ci(m: dict, key: str = "auc") -> str:
    lo, hi = m[f"{key}_ci95"]
    return f"{m[key]:.3f} [{lo:.3f}, {hi:.3f}]"
