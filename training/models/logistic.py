"""Linear row scorers: an L2 logistic regression (risk, credit, propensity) and a ridge linear
regression (credit loss), with the standardisation and the log1p of skewed money columns folded
into one plain ONNX graph (``export_log_linear``), so the served input is the raw encoded row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.core.manifest import TensorSpec
from training.export import OPSET, export_linear, save_graph
from training.models.base import Example, TrainableModel, register, score_io
from training.models.examples import score_rows


def log_augment(x: np.ndarray, log_cols: Sequence[int]) -> np.ndarray:
    """[x, log1p(max(x[:, log_cols], 0))]: the in-graph transform of skewed money columns."""
    x = np.asarray(x, np.float64)
    if not len(log_cols):
        return x
    return np.concatenate([x, np.log1p(np.maximum(x[:, list(log_cols)], 0.0))], axis=1)


def skewed_columns(x: np.ndarray, n_numeric: int, min_skew: float = 1.0) -> list[int]:
    """Numeric columns (the first ``n_numeric``) that are >= 0, have > 10 distinct values and skew > ``min_skew``."""
    out = []
    for j in range(n_numeric):
        v = x[:, j].astype(np.float64)
        if v.min() < 0 or len(np.unique(v)) <= 10:
            continue
        sd = v.std()
        if sd > 0 and np.mean(((v - v.mean()) / sd) ** 3) > min_skew:
            out.append(j)
    return out


def winsor_bounds(x: np.ndarray, q: float) -> np.ndarray:
    """[low, high] per column: the [q, 1 - q] quantiles of ``x``, as float32 values (the graph
    compares float32 inputs with them, so numpy and onnxruntime clip at the very same numbers)."""
    return np.quantile(np.asarray(x, np.float64), [q, 1 - q], axis=0).astype(np.float32).astype(np.float64)


class _Standardised:
    """What both linear scorers share: standardise the log-augmented row, then one dot product;
    the served layout is one score per row (``score_io``). The dataclasses below declare the
    fields it reads: ``mean``, ``scale``, ``coef``, ``intercept``, ``log_cols``, ``n_in``."""

    def linear(self, x: np.ndarray) -> np.ndarray:
        return ((log_augment(x, self.log_cols) - self.mean) / self.scale) @ self.coef + self.intercept

    def inputs(self) -> list[TensorSpec]:
        return score_io(self.n_in)[0]

    def outputs(self) -> list[TensorSpec]:
        return score_io(self.n_in)[1]

    def augmented_names(self, names: Sequence[str]) -> list[str]:
        return list(names) + [f"log1p({names[i]})" for i in self.log_cols]

    def importance(self, names: Sequence[str]) -> dict[str, float]:
        """|coef| on the standardised scale = |raw coef| * sd (log1p columns listed as such)."""
        imp = np.abs(self.coef)
        return {n: float(v) for n, v in sorted(zip(self.augmented_names(names), imp), key=lambda t: -t[1])}


@register
@dataclass
class Logistic(_Standardised, TrainableModel):
    """Standardise -> L2 logistic regression; ``export`` writes the equivalent ONNX graph on raw rows."""

    family = "logistic"
    task = "credit_default"

    mean: np.ndarray  # of the augmented row [x, log1p(x[:, log_cols])]
    scale: np.ndarray
    coef: np.ndarray  # on standardised augmented features
    intercept: float
    C: float
    log_cols: list[int]
    n_in: int
    # [low, high] per raw column, fitted on the training rows (``clip_quantile``): a linear score
    # extrapolates without limit, so one card whose processor fields ran far past anything seen in
    # training took the card model's whole top 1% of hold-out scores (docs/risk.md). None: no clip.
    bounds: np.ndarray | None = None
    l1_ratio: float = 0.0  # 0: L2 (lbfgs); 1: L1 (liblinear), when ``fit`` chose it by inner CV

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        seed: int = 7,
        Cs=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
        cv: int = 4,
        C: float | None = None,
        scoring: str = "roc_auc",
        log_cols: Sequence[int] = (),
        clip_quantile: float | None = None,
        l1_ratios: Sequence[float] = (0.0,),
    ) -> Logistic:
        """``clip_quantile=q`` winsorises every raw column to its [q, 1 - q] quantiles of ``x``
        (these training rows only), in ``predict`` and in the exported graph alike. ``l1_ratios``
        (0: L2, 1: L1) joins ``Cs`` in the inner CV grid; the default fits exactly as before."""

        n_in = x.shape[1]
        bounds = None
        if clip_quantile is not None:
            bounds = winsor_bounds(x, clip_quantile)
            x = np.clip(x, bounds[0], bounds[1])
        x = log_augment(x, log_cols)
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
        scale = np.where(sd > 0, sd, 1.0)
        z = (x - mean) / scale
        l1 = float(l1_ratios[0])
        if C is None:  # C (and the penalty) by stratified k-fold CV (mean AUC), version-proof
            from sklearn.model_selection import StratifiedKFold, cross_val_score

            folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
            grid = [(float(r), c) for r in l1_ratios for c in Cs]
            scores = [
                cross_val_score(_sklearn_logistic(c, r, seed), z, y, cv=folds, scoring=scoring).mean() for r, c in grid
            ]
            l1, C = grid[int(np.argmax(scores))]
            C = float(C)
        m = _sklearn_logistic(C, l1, seed).fit(z, y)
        coef, b = m.coef_.reshape(-1).astype(np.float64), float(m.intercept_[0])
        return cls(mean, scale, coef, b, C, [int(i) for i in log_cols], n_in, bounds, l1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.bounds is not None:
            x = np.clip(np.asarray(x, np.float64), self.bounds[0], self.bounds[1])
        return 1.0 / (1.0 + np.exp(-self.linear(x)))

    def export(self, path: Path) -> Path:
        if self.bounds is not None:
            return export_log_linear(
                self.coef,
                self.intercept,
                self.mean,
                self.scale,
                self.log_cols,
                self.n_in,
                path,
                activation="sigmoid",
                bounds=self.bounds,
            )
        if not self.log_cols:
            return export_linear(
                self.coef[:, None],
                np.array([self.intercept]),
                path,
                activation="sigmoid",
                mean=self.mean,
                scale=self.scale,
            )
        return export_log_linear(
            self.coef, self.intercept, self.mean, self.scale, self.log_cols, self.n_in, path, activation="sigmoid"
        )

    @classmethod
    def example(cls, seed: int) -> Example:
        x, y = score_rows(seed)
        return Example((x[:200], y[:200]), x[200:], {"Cs": (0.1, 1.0), "cv": 2, "log_cols": [0, 1]})


def _sklearn_logistic(C: float, l1_ratio: float, seed: int):
    """L2: lbfgs, as every logistic here was always fitted; L1: liblinear (lbfgs cannot), seeded.
    liblinear also penalises the intercept; ``intercept_scaling=10`` keeps that negligible."""
    from sklearn.linear_model import LogisticRegression

    if l1_ratio == 0:
        return LogisticRegression(C=C, max_iter=3000)
    if l1_ratio != 1:
        raise ValueError(f"l1_ratio must be 0 (L2) or 1 (L1), not {l1_ratio}")
    return LogisticRegression(
        C=C, l1_ratio=1.0, solver="liblinear", intercept_scaling=10.0, random_state=seed, max_iter=3000
    )


@register
@dataclass
class LinearRegression(_Standardised, TrainableModel):
    """Standardise -> ridge regression (alpha by ``RidgeCV``), log1p columns in the graph like ``Logistic``."""

    family = "linear"
    task = "credit_loss"
    tolerance = 1e-4  # float32 graph on targets of a few units (interest-rate % points)

    mean: np.ndarray  # of the augmented row [x, log1p(x[:, log_cols])]
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    alpha: float
    log_cols: list[int]
    n_in: int

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, seed: int = 7, alphas=(0.1, 1.0, 10.0, 100.0), log_cols: Sequence[int] = ()
    ) -> LinearRegression:
        from sklearn.linear_model import RidgeCV

        xa = log_augment(x, log_cols)
        mean, sd = xa.mean(0), xa.std(0)
        scale = np.where(sd > 0, sd, 1.0)
        reg = RidgeCV(alphas=alphas).fit((xa - mean) / scale, y)
        coef = np.asarray(reg.coef_, np.float64)
        return cls(mean, scale, coef, float(reg.intercept_), float(reg.alpha_), [int(i) for i in log_cols], x.shape[1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.linear(x)

    def export(self, path: Path) -> Path:
        return export_log_linear(
            self.coef, self.intercept, self.mean, self.scale, self.log_cols, self.n_in, path, activation=None
        )

    @classmethod
    def example(cls, seed: int) -> Example:
        x, _ = score_rows(seed)
        y = 12 + 0.5 * np.log1p(x[:, 0]) + x[:, 2] + np.random.default_rng(seed).normal(0, 0.3, len(x))
        return Example((x[:200], y[:200]), x[200:], {"log_cols": [0, 1]})


def export_log_linear(
    coef: np.ndarray,
    intercept: float,
    mean: np.ndarray,
    scale: np.ndarray,
    log_cols: Sequence[int],
    n_in: int,
    path: Path,
    activation: str | None = "sigmoid",
    input_name: str = "features",
    output_name: str = "score",
    bounds: np.ndarray | None = None,
) -> Path:
    """act(((concat[x, log1p(relu(x[:, log_cols]))] - mean) / scale) @ coef + b) as a plain ONNX graph.

    ``export_linear`` takes the augmented row; this graph takes the raw row so the served input
    (and the card's ``features``) stay the encoded raw columns. ``bounds`` ([low, high] per raw
    column) clips the row first (Min, then Max); without them the graph is the one written before.
    """
    from onnx import TensorProto, helper, numpy_helper

    clip_nodes, x_in = [], input_name
    if bounds is not None:
        x_in = "x_clipped"
        clip_nodes = [
            helper.make_node("Min", [input_name, "CLIP_HI"], ["x_below_hi"]),
            helper.make_node("Max", ["x_below_hi", "CLIP_LO"], [x_in]),
        ]
    inits = [
        numpy_helper.from_array(np.asarray(log_cols, np.int64), "LOG_IDX"),
        numpy_helper.from_array(np.ones((1, 1), np.float32), "ONE"),
        numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, -1), "MU"),
        numpy_helper.from_array(np.asarray(scale, np.float32).reshape(1, -1), "SIGMA"),
        numpy_helper.from_array(np.asarray(coef, np.float32).reshape(-1, 1), "W"),
        numpy_helper.from_array(np.asarray([intercept], np.float32), "B"),
    ]
    if bounds is not None:
        inits += [
            numpy_helper.from_array(np.asarray(bounds[0], np.float32).reshape(1, -1), "CLIP_LO"),
            numpy_helper.from_array(np.asarray(bounds[1], np.float32).reshape(1, -1), "CLIP_HI"),
        ]
    last = output_name if activation is None else "logit"
    nodes = [
        *clip_nodes,
        helper.make_node("Gather", [x_in, "LOG_IDX"], ["x_skewed"], axis=1),
        helper.make_node("Relu", ["x_skewed"], ["x_pos"]),
        helper.make_node("Add", ["x_pos", "ONE"], ["x_pos1"]),
        helper.make_node("Log", ["x_pos1"], ["x_log"]),
        helper.make_node("Concat", [x_in, "x_log"], ["x_aug"], axis=1),
        helper.make_node("Sub", ["x_aug", "MU"], ["x_centered"]),
        helper.make_node("Div", ["x_centered", "SIGMA"], ["x_scaled"]),
        helper.make_node("MatMul", ["x_scaled", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], [last]),
    ]
    if activation == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["logit"], [output_name]))
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")
    graph = helper.make_graph(
        nodes,
        "log_linear",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, 1])],
        inits,
    )
    return save_graph(graph, path, OPSET)
