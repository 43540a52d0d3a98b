"""Model families shared by the risk and propensity jobs: an L2 logistic regression whose
standardisation (and log1p of skewed money columns) is folded into its ONNX graph, a small Keras
MLP with the same in-graph preprocessing, and the helpers around them (splits, ONNX parity,
permutation importance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.export import export_linear, onnx_run
from training.risk_metrics import auc


def set_seed(seed: int) -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised
        pass


def single_thread():
    """OpenMP (HistGradientBoosting) limited to one thread. On the shared, loaded 2-core machine
    its threads mostly wait for each other: a German-credit fit took 13.7 s with them and 0.6 s
    without; a card GBM on 12k / 194k rows 7.6 / 23.3 s against 2.6 / 19.6 s. Same trees."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


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


def _preprocess_layer():
    """A Keras layer: optional log1p columns appended, then frozen standardisation.

    Statistics live in non-trainable weights (not captured constants) so the ONNX converter
    freezes them into the graph like any kernel.
    """
    import keras
    from keras import ops

    class Preprocess(keras.layers.Layer):
        def __init__(self, mean, scale, log_cols=(), **kw):
            super().__init__(**kw)
            self._mean0 = np.asarray(mean, np.float32)
            self._scale0 = np.asarray(scale, np.float32)
            self.log_cols = [int(i) for i in log_cols]

        def build(self, input_shape):
            self.mu = self.add_weight(
                shape=self._mean0.shape,
                initializer=keras.initializers.Constant(self._mean0),
                trainable=False,
                name="mu",
            )
            self.sigma = self.add_weight(
                shape=self._scale0.shape,
                initializer=keras.initializers.Constant(self._scale0),
                trainable=False,
                name="sigma",
            )

        def call(self, x):
            if self.log_cols:
                x = ops.concatenate(
                    [x, ops.log(ops.relu(ops.take(x, self.log_cols, axis=1)) + 1.0)], axis=1
                )  # no Log1p in ONNX
            return (x - self.mu) / self.sigma

    return Preprocess


def keras_mlp(
    n_in: int,
    mean: np.ndarray,
    scale: np.ndarray,
    log_cols: Sequence[int] = (),
    hidden: Sequence[int] = (32, 16),
    dropout: float = 0.2,
    l2: float = 1e-4,
    lr: float = 1e-3,
    seed: int = 7,
    steps_per_execution: int = 1,
):
    """features -> Preprocess (log1p columns, frozen standardisation) -> Dense(relu)... -> sigmoid."""
    import keras

    reg = keras.regularizers.l2(l2) if l2 else None
    x_in = keras.Input((n_in,), name="features")
    x = _preprocess_layer()(mean, scale, log_cols, name="preprocess")(x_in)
    for i, h in enumerate(hidden):
        x = keras.layers.Dense(
            h,
            activation="relu",
            kernel_regularizer=reg,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
        )(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + 100 + i)(x)
    out = keras.layers.Dense(
        1, activation="sigmoid", name="score", kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 99)
    )(x)
    model = keras.Model(x_in, out)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="binary_crossentropy",
        steps_per_execution=steps_per_execution,
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.AUC(curve="PR", name="pr_auc")],
    )
    return model


def fit_mlp(
    x_tr,
    y_tr,
    x_va,
    y_va,
    *,
    seed: int,
    epochs: int,
    batch: int,
    monitor: str = "val_auc",
    patience: int = 8,
    log_cols: Sequence[int] = (),
    **kw,
):
    import keras

    set_seed(seed)
    aug = log_augment(x_tr, log_cols)
    sd = aug.std(axis=0)
    model = keras_mlp(x_tr.shape[1], aug.mean(axis=0), np.where(sd > 0, sd, 1.0), log_cols, seed=seed, **kw)
    stop = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience, restore_best_weights=True)
    hist = model.fit(
        np.asarray(x_tr, np.float32),
        y_tr.astype(np.float32),
        validation_data=(np.asarray(x_va, np.float32), y_va.astype(np.float32)),
        epochs=epochs,
        batch_size=batch,
        verbose=0,
        callbacks=[stop],
        shuffle=True,
    )
    return model, len(hist.history["loss"])


def keras_predict(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(np.asarray(x, np.float32), training=False)).reshape(-1)


@dataclass
class Logistic:
    """Standardise -> L2 logistic regression; ``export`` writes the equivalent ONNX graph on raw rows."""

    mean: np.ndarray  # of the augmented row [x, log1p(x[:, log_cols])]
    scale: np.ndarray
    coef: np.ndarray  # on standardised augmented features
    intercept: float
    C: float
    log_cols: list[int]
    n_in: int

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        seed: int,
        Cs=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
        cv: int = 4,
        C: float | None = None,
        scoring: str = "roc_auc",
        log_cols: Sequence[int] = (),
    ) -> Logistic:
        from sklearn.linear_model import LogisticRegression

        n_in = x.shape[1]
        x = log_augment(x, log_cols)
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
        scale = np.where(sd > 0, sd, 1.0)
        z = (x - mean) / scale
        if C is None:  # C by stratified k-fold CV (mean AUC), version-proof
            from sklearn.model_selection import StratifiedKFold, cross_val_score

            folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
            scores = [
                cross_val_score(LogisticRegression(C=c, max_iter=3000), z, y, cv=folds, scoring=scoring).mean()
                for c in Cs
            ]
            C = float(Cs[int(np.argmax(scores))])
        m = LogisticRegression(C=C, max_iter=3000).fit(z, y)
        coef, b = m.coef_.reshape(-1).astype(np.float64), float(m.intercept_[0])
        return cls(mean, scale, coef, b, C, [int(i) for i in log_cols], n_in)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (log_augment(x, self.log_cols) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))

    def export(self, path: Path) -> Path:
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

    def augmented_names(self, names: Sequence[str]) -> list[str]:
        return list(names) + [f"log1p({names[i]})" for i in self.log_cols]

    def importance(self, names: Sequence[str]) -> dict[str, float]:
        """|coef| on the standardised scale = |raw coef| * sd (log1p columns listed as such)."""
        imp = np.abs(self.coef)
        return {n: float(v) for n, v in sorted(zip(self.augmented_names(names), imp), key=lambda t: -t[1])}


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
) -> Path:
    """act(((concat[x, log1p(relu(x[:, log_cols]))] - mean) / scale) @ coef + b) as a plain ONNX graph.

    ``export_linear`` takes the augmented row; this graph takes the raw row so the served input
    (and the card's ``features``) stay the encoded raw columns.
    """
    from onnx import TensorProto, helper, numpy_helper

    from training.export import OPSET, save_graph

    inits = [
        numpy_helper.from_array(np.asarray(log_cols, np.int64), "LOG_IDX"),
        numpy_helper.from_array(np.ones((1, 1), np.float32), "ONE"),
        numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, -1), "MU"),
        numpy_helper.from_array(np.asarray(scale, np.float32).reshape(1, -1), "SIGMA"),
        numpy_helper.from_array(np.asarray(coef, np.float32).reshape(-1, 1), "W"),
        numpy_helper.from_array(np.asarray([intercept], np.float32), "B"),
    ]
    last = output_name if activation is None else "logit"
    nodes = [
        helper.make_node("Gather", [input_name, "LOG_IDX"], ["x_skewed"], axis=1),
        helper.make_node("Relu", ["x_skewed"], ["x_pos"]),
        helper.make_node("Add", ["x_pos", "ONE"], ["x_pos1"]),
        helper.make_node("Log", ["x_pos1"], ["x_log"]),
        helper.make_node("Concat", [input_name, "x_log"], ["x_aug"], axis=1),
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
