"""Risk models: credit default (three real data sets), a continuous credit-risk target, and the
stream's live transaction-risk scorer (synthetic card transactions).

Credit default (task ``credit_default``), per data set (German, credit_data, lending_club):
logistic regression (L2, C by 5-fold CV on the training split) and a small Keras MLP, both taking
the same input row: numeric columns as they are and one-hot ``col=level`` columns (the
standardisation is folded into the ONNX graphs). Stratified 60/20/20 train/validation/test split
(fixed seed): the MLP early-stops on validation AUC, both models set their alert threshold on
validation (Youden's J), and the test split gives the reported figures (AUC with a bootstrap 95%
CI, PR-AUC, Brier score).

Credit loss (task ``credit_loss``): linear regression of lending_club ``int_rate`` on applicant
features (no grade), reported as test R^2/RMSE against the mean-only baseline.

Transaction risk (task ``transaction_risk``, the ``risk`` slot): synthetic accounts and fraud from
``stream.synthetic``, featurised by ``stream.core.features.replay_features`` (the functions the
stream calls), split by time (first 2/3 of days train, next 1/6 validation, last 1/6 test).
Logistic regression and an MLP; the default is the one with the higher *validation* PR-AUC; the
threshold is the lowest score whose validation precision is >= ``TXN_PRECISION_TARGET`` (highest
recall at that precision), falling back to the top-1% alert rate when no threshold reaches it.
All transaction figures are synthetic.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from stream.core.features import TXN_FEATURE_LABELS, TXN_FEATURES, replay_features
from stream.core.manifest import ModelCard, TensorSpec
from training.export import data_fingerprint, export_keras, export_linear, make_card, onnx_run, reference_distribution
from training.job import JobResult, TrainContext

TXN_PRECISION_TARGET = 0.5
TXN_ALERT_RATE_FALLBACK = 0.01
TXN_ACCOUNTS = 2500
TXN_DAYS = 60
TXN_FRAUD_RATE = 0.01
N_BOOT = 1000

CREDIT_NAMES = {"german": "german_credit", "credit_data": "credit_data", "lending_club": "lending_club"}
CREDIT_TARGETS = {"german": 0.79, "credit_data": 0.84, "lending_club": 0.74}
# lending_club (5% bad, 115 columns) needs a much more regularised net than the other two.
MLP_CONFIG = {
    "default": dict(hidden=(32, 16), dropout=0.3, l2=1e-3, lr=2e-3, batch=64),
    "credit_data": dict(hidden=(32, 16), dropout=0.3, l2=1e-3, lr=2e-3, batch=128),
    "lending_club": dict(hidden=(16,), dropout=0.5, l2=1e-2, lr=1e-3, batch=256),
}


# ============================================================================ metrics

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


def bootstrap_ci(metric: Callable[..., float], *arrays: np.ndarray, n: int = N_BOOT, seed: int = 7,
                 stratify: np.ndarray | None = None, alpha: float = 0.05) -> tuple[float, float]:
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
    return float(np.quantile(p, 1 - fallback_rate)), f"top {fallback_rate:.0%} of validation scores (precision target unreachable)"


def at_threshold(y: np.ndarray, p: np.ndarray, thr: float) -> dict:
    alert = p >= thr
    tp = int((alert & (y == 1)).sum())
    return {"threshold": float(thr), "alert_rate": float(alert.mean()),
            "precision": float(tp / max(int(alert.sum()), 1)), "recall": float(tp / max(int((y == 1).sum()), 1))}


def classification_metrics(y: np.ndarray, p: np.ndarray, thr: float, seed: int, n_boot: int = N_BOOT) -> dict:
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    lo, hi = bootstrap_ci(auc, y, p, n=n_boot, seed=seed, stratify=y)
    plo, phi = bootstrap_ci(pr_auc, y, p, n=max(n_boot // 5, 100), seed=seed, stratify=y)
    return {"auc": auc(y, p), "auc_ci95": [lo, hi], "pr_auc": pr_auc(y, p), "pr_auc_ci95": [plo, phi],
            "brier": float(np.mean((p - y) ** 2)), "n": int(len(y)), "positives": int(y.sum()),
            "at_threshold": at_threshold(y, p, thr)}


# ============================================================================= models

def set_seed(seed: int) -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:      # already initialised
        pass


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
            self.mu = self.add_weight(shape=self._mean0.shape, initializer=keras.initializers.Constant(self._mean0),
                                      trainable=False, name="mu")
            self.sigma = self.add_weight(shape=self._scale0.shape, initializer=keras.initializers.Constant(self._scale0),
                                         trainable=False, name="sigma")

        def call(self, x):
            if self.log_cols:
                x = ops.concatenate([x, ops.log(ops.relu(ops.take(x, self.log_cols, axis=1)) + 1.0)], axis=1)   # no Log1p in ONNX
            return (x - self.mu) / self.sigma

    return Preprocess


def keras_mlp(n_in: int, mean: np.ndarray, scale: np.ndarray, log_cols: Sequence[int] = (),
              hidden: Sequence[int] = (32, 16), dropout: float = 0.2, l2: float = 1e-4, lr: float = 1e-3, seed: int = 7,
              steps_per_execution: int = 1):
    """features -> Preprocess (log1p columns, frozen standardisation) -> Dense(relu)... -> sigmoid."""
    import keras

    reg = keras.regularizers.l2(l2) if l2 else None
    x_in = keras.Input((n_in,), name="features")
    x = _preprocess_layer()(mean, scale, log_cols, name="preprocess")(x_in)
    for i, h in enumerate(hidden):
        x = keras.layers.Dense(h, activation="relu", kernel_regularizer=reg,
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i))(x)
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + 100 + i)(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="score",
                             kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 99))(x)
    model = keras.Model(x_in, out)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", steps_per_execution=steps_per_execution,
                  metrics=[keras.metrics.AUC(name="auc"), keras.metrics.AUC(curve="PR", name="pr_auc")])
    return model


def fit_mlp(x_tr, y_tr, x_va, y_va, *, seed: int, epochs: int, batch: int, monitor: str = "val_auc",
            patience: int = 8, log_cols: Sequence[int] = (), **kw):
    import keras

    set_seed(seed)
    aug = log_augment(x_tr, log_cols)
    sd = aug.std(axis=0)
    model = keras_mlp(x_tr.shape[1], aug.mean(axis=0), np.where(sd > 0, sd, 1.0), log_cols, seed=seed, **kw)
    stop = keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=patience, restore_best_weights=True)
    hist = model.fit(np.asarray(x_tr, np.float32), y_tr.astype(np.float32),
                     validation_data=(np.asarray(x_va, np.float32), y_va.astype(np.float32)), epochs=epochs,
                     batch_size=batch, verbose=0, callbacks=[stop], shuffle=True)
    return model, len(hist.history["loss"])


def keras_predict(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(np.asarray(x, np.float32), training=False)).reshape(-1)


@dataclass
class Logistic:
    """Standardise -> L2 logistic regression; ``export`` writes the equivalent ONNX graph on raw rows."""

    mean: np.ndarray          # of the augmented row [x, log1p(x[:, log_cols])]
    scale: np.ndarray
    coef: np.ndarray          # on standardised augmented features
    intercept: float
    C: float
    log_cols: list[int]
    n_in: int

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, seed: int, Cs=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
            cv: int = 4, C: float | None = None, scoring: str = "roc_auc", log_cols: Sequence[int] = ()) -> "Logistic":
        from sklearn.linear_model import LogisticRegression

        n_in = x.shape[1]
        x = log_augment(x, log_cols)
        mean = x.mean(axis=0)
        sd = x.std(axis=0)
        scale = np.where(sd > 0, sd, 1.0)
        z = (x - mean) / scale
        if C is None:                       # C by stratified k-fold CV (mean AUC), version-proof
            from sklearn.model_selection import StratifiedKFold, cross_val_score

            folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
            scores = [cross_val_score(LogisticRegression(C=c, max_iter=3000), z, y, cv=folds, scoring=scoring).mean()
                      for c in Cs]
            C = float(Cs[int(np.argmax(scores))])
        m = LogisticRegression(C=C, max_iter=3000).fit(z, y)
        coef, b = m.coef_.reshape(-1).astype(np.float64), float(m.intercept_[0])
        return cls(mean, scale, coef, b, C, [int(i) for i in log_cols], n_in)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (log_augment(x, self.log_cols) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))

    def export(self, path: Path) -> Path:
        if not self.log_cols:
            return export_linear(self.coef[:, None], np.array([self.intercept]), path, activation="sigmoid",
                                 mean=self.mean, scale=self.scale)
        return export_log_linear(self.coef, self.intercept, self.mean, self.scale, self.log_cols, self.n_in, path,
                                 activation="sigmoid")

    def augmented_names(self, names: Sequence[str]) -> list[str]:
        return list(names) + [f"log1p({names[i]})" for i in self.log_cols]

    def importance(self, names: Sequence[str]) -> dict[str, float]:
        """|coef| on the standardised scale = |raw coef| * sd (log1p columns listed as such)."""
        imp = np.abs(self.coef)
        return {n: float(v) for n, v in sorted(zip(self.augmented_names(names), imp), key=lambda t: -t[1])}


def export_log_linear(coef: np.ndarray, intercept: float, mean: np.ndarray, scale: np.ndarray, log_cols: Sequence[int],
                      n_in: int, path: Path, activation: str | None = "sigmoid", input_name: str = "features",
                      output_name: str = "score") -> Path:
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
    graph = helper.make_graph(nodes, "log_linear",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, n_in])],
                              [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, 1])], inits)
    return save_graph(graph, path, OPSET)


def permutation_importance(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                           groups: dict[str, list[int]], metric: Callable = auc, repeats: int = 3,
                           seed: int = 7) -> dict[str, float]:
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


def check_parity(path: Path, x: np.ndarray, expected: np.ndarray, name: str, tol: float = 1e-5,
                 input_name: str = "features") -> float:
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


# ========================================================================= credit

def train_credit(ctx: TrainContext, dataset: str, *, epochs: int = 60, export: bool = True, n_boot: int = N_BOOT,
                 cs=None) -> tuple[list[ModelCard], dict]:
    """LR + MLP for one credit data set; returns cards and a report dict."""
    from training.data import credit

    t0 = time.time()
    cs = cs or credit.load(dataset, ctx.cache_dir, ctx.quality)
    x, names = cs.features()
    y = cs.y
    tr, va, te = stratified_split(y, ctx.seed)
    base = CREDIT_NAMES[dataset]
    encoding = cs.encoding
    encoding["clip"] = clip_bounds(cs.frame, encoding)
    log_cols = skewed_columns(x[tr], len(cs.numeric))
    extra = {"encoding": encoding, "source": cs.source, "target": f"{cs.target} (1 = bad)",
             "in_graph_log1p": [names[i] for i in log_cols],
             "split": "stratified 60/20/20 train/validation/test, seed %d" % ctx.seed,
             "threshold_rule": "Youden's J on the validation split"}
    report = {"dataset": dataset, "rows": int(len(y)), "bad_rate": float(y.mean()), "features": len(names),
              "in_graph_log1p": [names[i] for i in log_cols],
              "target_auc": CREDIT_TARGETS[dataset], "models": {}}
    cards = []

    # -- logistic regression
    lr = Logistic.fit(x[tr], y[tr], seed=ctx.seed, log_cols=log_cols)
    p_va, p_te = lr.predict(x[va]), lr.predict(x[te])
    thr = youden_threshold(y[va], p_va)
    m_lr = classification_metrics(y[te], p_te, thr, ctx.seed, n_boot)
    m_lr["val_auc"] = auc(y[va], p_va)
    m_lr["C"] = lr.C
    imp_lr = lr.importance(names)
    report["models"][f"{base}_logistic"] = {"family": "logistic", **m_lr, "importance_abs_coef_x_sd": dict(list(imp_lr.items())[:10])}

    # -- MLP
    cfg = MLP_CONFIG.get(dataset, MLP_CONFIG["default"])
    mlp, n_ep = fit_mlp(x[tr], y[tr], x[va], y[va], seed=ctx.seed, epochs=epochs, log_cols=log_cols, patience=6, **cfg)
    q_va, q_te = keras_predict(mlp, x[va]), keras_predict(mlp, x[te])
    thr_m = youden_threshold(y[va], q_va)
    m_mlp = classification_metrics(y[te], q_te, thr_m, ctx.seed, n_boot)
    m_mlp["val_auc"] = auc(y[va], q_va)
    m_mlp["epochs"] = n_ep
    groups = column_groups(cs.encoding)
    imp_mlp = permutation_importance(lambda a: keras_predict(mlp, a), x[te], y[te], groups, seed=ctx.seed)
    report["models"][f"{base}_mlp"] = {"family": "mlp", **m_mlp, "importance_permutation_auc_drop": dict(list(imp_mlp.items())[:10])}

    if export:
        inputs = [TensorSpec("features", [None, len(names)], features=list(names))]
        outputs = [TensorSpec("score", [None, 1], meaning=["probability of default (bad)"])]
        common = dict(reference_distribution=reference_distribution(x[tr], names), data_fingerprint=data_fingerprint(x[tr], y[tr]),
                      baseline=[float(v) for v in x[tr].mean(axis=0)], feature_labels=credit_labels(names))
        path = ctx.out_dir / f"{base}_logistic.onnx"
        lr.export(path)
        m_lr["onnx_max_abs_err"] = check_parity(path, x[te], p_te, f"{base}_logistic")
        cards.append(make_card(f"{base}_logistic", "credit_default", "logistic", path, inputs, outputs, threshold=thr,
                               metrics=_card_metrics(m_lr), extra={**extra, "C": lr.C, "importance": dict(list(imp_lr.items())[:10])},
                               **common))
        path = ctx.out_dir / f"{base}_mlp.onnx"
        export_keras(mlp, path, inputs, output_names=("score",))
        m_mlp["onnx_max_abs_err"] = check_parity(path, x[te], q_te, f"{base}_mlp")
        cards.append(make_card(f"{base}_mlp", "credit_default", "mlp", path, inputs, outputs, threshold=thr_m,
                               metrics=_card_metrics(m_mlp), extra={**extra, "epochs": n_ep,
                                                                     "importance": dict(list(imp_mlp.items())[:10])},
                               **common))
    report["seconds"] = round(time.time() - t0, 1)
    return cards, report


def clip_bounds(frame, encoding: dict) -> dict:
    """Training min/max of numeric columns (winsorised columns are already clipped): optional serve-time clip."""
    return {c: [float(frame[c].min()), float(frame[c].max())] for c in encoding["numeric"]}


def credit_labels(names: Sequence[str]) -> dict[str, str]:
    out = {}
    for n in names:
        if "=" in n:
            col, lvl = n.split("=", 1)
            out[n] = f"{col.replace('_', ' ')} is {lvl}"
        else:
            out[n] = n.replace("_", " ")
    return out


def _card_metrics(m: dict) -> dict:
    keys = ("auc", "auc_ci95", "pr_auc", "pr_auc_ci95", "brier", "n", "positives", "val_auc", "at_threshold",
            "r2", "r2_ci95", "rmse", "mae", "baseline_rmse", "onnx_max_abs_err", "val_pr_auc")
    return {k: m[k] for k in keys if k in m}


def train_credit_loss(ctx: TrainContext, cs=None, export: bool = True, n_boot: int = N_BOOT) -> tuple[list[ModelCard], dict]:
    """Linear regression of lending_club int_rate (%) on applicant features (no grade)."""
    from sklearn.linear_model import RidgeCV

    from training.data import credit

    cs = cs or credit.load("lending_club", ctx.cache_dir, ctx.quality)
    view = credit.loss_view(cs)
    x, names = view.features()
    y = view.y
    tr, va, te = stratified_split(cs.y, ctx.seed)          # same rows as the default models
    fit_idx = np.concatenate([tr, va])
    log_cols = skewed_columns(x[fit_idx], len(view.numeric))
    xa = log_augment(x, log_cols)
    mean, sd = xa[fit_idx].mean(0), xa[fit_idx].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    z = lambda a: (a - mean) / sd  # noqa: E731
    reg = RidgeCV(alphas=(0.1, 1.0, 10.0, 100.0)).fit(z(xa[fit_idx]), y[fit_idx])
    pred = reg.predict(z(xa[te]))

    def r2(a, b):
        return float(1 - np.sum((a - b) ** 2) / np.sum((a - a.mean()) ** 2))

    lo, hi = bootstrap_ci(r2, y[te], pred, n=n_boot, seed=ctx.seed)
    m = {"r2": r2(y[te], pred), "r2_ci95": [lo, hi], "rmse": float(np.sqrt(np.mean((y[te] - pred) ** 2))),
         "mae": float(np.mean(np.abs(y[te] - pred))),
         "baseline_rmse": float(np.sqrt(np.mean((y[te] - y[fit_idx].mean()) ** 2))), "n": int(len(te)),
         "alpha": float(reg.alpha_)}
    aug_names = list(names) + [f"log1p({names[i]})" for i in log_cols]
    imp = {n: float(v) for n, v in sorted(zip(aug_names, np.abs(reg.coef_)), key=lambda t: -t[1])}
    m["importance_abs_coef_x_sd"] = dict(list(imp.items())[:10])
    cards = []
    name = "lending_club_int_rate_linear"
    if export:
        path = ctx.out_dir / f"{name}.onnx"
        export_log_linear(reg.coef_, float(reg.intercept_), mean, sd, log_cols, len(names), path, activation=None)
        m["onnx_max_abs_err"] = check_parity(path, x[te], pred, name, tol=1e-3)   # % points; float32 graph
        enc = view.encoding
        enc["clip"] = clip_bounds(view.frame, enc)
        cards.append(make_card(
            name, "credit_loss", "linear", path,
            [TensorSpec("features", [None, len(names)], features=list(names))],
            [TensorSpec("score", [None, 1], meaning=["predicted interest rate (%)"])],
            metrics=_card_metrics(m), reference_distribution=reference_distribution(x[fit_idx], names),
            data_fingerprint=data_fingerprint(x[fit_idx], y[fit_idx]),
            baseline=[float(v) for v in x[fit_idx].mean(0)], feature_labels=credit_labels(names),
            extra={"encoding": enc, "source": cs.source, "target": "int_rate (%)", "alpha": float(reg.alpha_),
                   "in_graph_log1p": [names[i] for i in log_cols],
                   "split": "train+validation of the lending_club default split; test = its test split",
                   "importance": m["importance_abs_coef_x_sd"]}))
    return cards, {"dataset": "lending_club", "target": "int_rate", "features": len(names), **m}


# ==================================================================== transactions

def synthetic_transactions(ctx: TrainContext, n_accounts: int = TXN_ACCOUNTS, days: int = TXN_DAYS,
                           fraud_rate: float = TXN_FRAUD_RATE):
    """Generate, clean (quality rules) and featurise synthetic transactions; returns (x, y, day index)."""
    import pandas as pd

    from stream.synthetic import START_MS, generate_transactions
    from training.quality import clean_table

    recs = generate_transactions(n_accounts=n_accounts, days=days, fraud_rate=fraud_rate, seed=ctx.seed)
    df = pd.DataFrame.from_records(recs)
    df = clean_table(df, "synthetic_transactions", ctx.quality, non_negative=["amount", "ts"],
                     required=["event_id", "account_id", "ts", "amount", "currency", "merchant_category", "channel",
                               "country"], dedupe=True)
    df = df.sort_values("ts", kind="stable")
    rows = zip(df["account_id"], df["ts"].astype("int64"), df["amount"].astype(float), df["country"],
               df["merchant_category"], df["channel"])
    x = replay_features(ctx.progress(rows, desc="replay transactions", total=len(df)))
    y = df["is_fraud"].to_numpy(dtype=np.int64)
    day = ((df["ts"].to_numpy(dtype=np.int64) - START_MS) // 86_400_000).astype(np.int64)
    return x, y, day


def train_transactions(ctx: TrainContext, *, n_accounts: int = TXN_ACCOUNTS, days: int = TXN_DAYS,
                       epochs: int = 12, export: bool = True, n_boot: int = 200) -> tuple[list[ModelCard], dict, str]:
    t0 = time.time()
    x, y, day = synthetic_transactions(ctx, n_accounts, days)
    names = list(TXN_FEATURES)
    cut_va, cut_te = int(days * 2 / 3), int(days * 5 / 6)
    tr, va, te = day < cut_va, (day >= cut_va) & (day < cut_te), day >= cut_te
    report = {"synthetic": True, "accounts": n_accounts, "days": days, "rows": int(len(y)), "fraud_rate": float(y.mean()),
              "split": {"train_days": [0, cut_va], "validation_days": [cut_va, cut_te], "test_days": [cut_te, days],
                        "train_rows": int(tr.sum()), "validation_rows": int(va.sum()), "test_rows": int(te.sum()),
                        "test_frauds": int(y[te].sum())},
              "models": {}}

    lr = Logistic.fit(x[tr], y[tr], seed=ctx.seed, C=1.0)
    p = {"val": lr.predict(x[va]), "test": lr.predict(x[te])}
    mlp, n_ep = fit_mlp(x[tr], y[tr], x[va], y[va], seed=ctx.seed, epochs=epochs, batch=512, monitor="val_pr_auc",
                        patience=3, hidden=(32, 16), dropout=0.1, l2=1e-5)
    q = {"val": keras_predict(mlp, x[va]), "test": keras_predict(mlp, x[te])}

    results = {}
    for name, fam, pr, model_imp in (
        ("txn_risk_logistic", "logistic", p, lambda: lr.importance(names)),
        ("txn_risk_mlp", "mlp", q, lambda: permutation_importance(
            lambda a: keras_predict(mlp, a), x[te], y[te], {n: [i] for i, n in enumerate(names)}, metric=_pr_metric,
            repeats=2, seed=ctx.seed)),
    ):
        thr, rule = precision_threshold(y[va], pr["val"], TXN_PRECISION_TARGET, TXN_ALERT_RATE_FALLBACK)
        m = classification_metrics(y[te], pr["test"], thr, ctx.seed, n_boot)
        m["val_pr_auc"] = pr_auc(y[va], pr["val"])
        m["val_auc"] = auc(y[va], pr["val"])
        m["threshold_rule"] = rule
        m["importance"] = dict(list(model_imp().items()))
        m["family"] = fam
        results[name] = m
    results["txn_risk_mlp"]["epochs"] = n_ep
    winner = max(results, key=lambda k: results[k]["val_pr_auc"])
    report["models"] = results
    report["default"] = winner
    report["default_rule"] = "higher validation PR-AUC"

    cards = []
    if export:
        inputs = [TensorSpec("features", [None, len(names)], features=names)]
        outputs = [TensorSpec("score", [None, 1], meaning=["probability the transaction is fraudulent (synthetic-trained)"])]
        legit = x[tr][y[tr] == 0]
        common = dict(reference_distribution=reference_distribution(x[tr], names), data_fingerprint=data_fingerprint(x[tr], y[tr]),
                      baseline=[float(v) for v in legit.mean(axis=0)], feature_labels=dict(TXN_FEATURE_LABELS))
        extra = {"synthetic": True, "generator": f"stream.synthetic.generate_transactions(n_accounts={n_accounts}, days={days}, "
                 f"fraud_rate={TXN_FRAUD_RATE}, seed={ctx.seed})", "features_fn": "stream.core.features.replay_features",
                 "split": report["split"], "baseline_rule": "mean of non-fraud training rows"}
        path = ctx.out_dir / "txn_risk_logistic.onnx"
        lr.export(path)
        results["txn_risk_logistic"]["onnx_max_abs_err"] = check_parity(path, x[te], p["test"], "txn_risk_logistic")
        path2 = ctx.out_dir / "txn_risk_mlp.onnx"
        export_keras(mlp, path2, inputs, output_names=("score",))
        results["txn_risk_mlp"]["onnx_max_abs_err"] = check_parity(path2, x[te], q["test"], "txn_risk_mlp")
        for name, fam, pth in (("txn_risk_logistic", "logistic", path), ("txn_risk_mlp", "mlp", path2)):
            m = results[name]
            cards.append(make_card(name, "transaction_risk", fam, pth, inputs, outputs, threshold=m["at_threshold"]["threshold"],
                                   metrics={**_card_metrics(m), "synthetic": True},
                                   extra={**extra, "threshold_rule": m["threshold_rule"], "importance": m["importance"]},
                                   **common))
    report["seconds"] = round(time.time() - t0, 1)
    return cards, report, winner


def _pr_metric(y, p):
    return pr_auc(y, p)


# ============================================================================ job

def train(ctx: TrainContext) -> JobResult:
    from training.data import credit

    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    cards: list[ModelCard] = []
    report: dict = {"credit": {}, "credit_loss": {}, "transactions": {}}
    for ds in ctx.progress(list(credit.DATASETS), desc="credit models"):
        cs = credit.load(ds, ctx.cache_dir, ctx.quality)
        c, r = train_credit(ctx, ds, cs=cs)
        cards += c
        report["credit"][ds] = r
        if ds == "lending_club":
            c, r = train_credit_loss(ctx, cs=cs)
            cards += c
            report["credit_loss"] = r
    c, r, winner = train_transactions(ctx)
    cards += c
    report["transactions"] = r
    return JobResult(cards=cards, defaults={"risk": winner}, report_md=render_md(report), report=report)


def render_md(rep: dict) -> str:
    L = ["## Risk models", "",
         "### Credit default (real data; stratified 60/20/20 split, figures on the 20% test split)", "",
         "AUC with a 95% stratified bootstrap CI (1,000 resamples). The threshold is Youden-optimal on the validation split.",
         "", "| data set | rows | bad rate | target AUC | model | test AUC [95% CI] | PR-AUC | Brier | recall @thr | precision @thr |",
         "|---|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for ds, r in rep["credit"].items():
        for name, m in r["models"].items():
            a = m["at_threshold"]
            L.append(f"| {ds} | {r['rows']} | {r['bad_rate']:.1%} | {r['target_auc']:.2f} | `{name}` | {_ci(m)} | "
                     f"{m['pr_auc']:.3f} | {m['brier']:.3f} | {a['recall']:.2f} | {a['precision']:.2f} |")
    L += ["", "Global importance (logistic: |coef|·sd on the standardised scale; MLP: drop in test AUC when a raw column "
          "— all its one-hots together — is permuted, mean of 3 repeats):", ""]
    for ds, r in rep["credit"].items():
        for name, m in r["models"].items():
            imp = m.get("importance_abs_coef_x_sd") or m.get("importance_permutation_auc_drop")
            L.append(f"- `{name}`: {_top(imp)}")
    cl = rep.get("credit_loss") or {}
    if cl:
        lo, hi = cl["r2_ci95"]
        L += ["", "### Credit loss proxy: lending_club interest rate (linear regression, ridge-tuned)", "",
              f"`lending_club_int_rate_linear` predicts `int_rate` (%) from applicant features without the grade: test "
              f"R² {cl['r2']:.3f} [{lo:.3f}, {hi:.3f}], RMSE {cl['rmse']:.2f} pp (mean-only baseline {cl['baseline_rmse']:.2f} pp), "
              f"MAE {cl['mae']:.2f} pp, n={cl['n']}. Largest |coef|·sd: {_top(cl['importance_abs_coef_x_sd'])}."]
    t = rep.get("transactions") or {}
    if t:
        s = t["split"]
        L += ["", "### Transaction risk (SYNTHETIC data — the live `risk` slot)", "",
              f"{t['rows']:,} synthetic transactions from {t['accounts']:,} accounts over {t['days']} days "
              f"(fraud rate {t['fraud_rate']:.2%}), featurised with `replay_features` (the stream's own functions). "
              f"Chronological split: days {s['train_days'][0]}–{s['train_days'][1]} train, {s['validation_days'][0]}–"
              f"{s['validation_days'][1]} validation, {s['test_days'][0]}–{s['test_days'][1]} test "
              f"({s['test_rows']:,} rows, {s['test_frauds']} frauds). CIs: 200 stratified bootstrap resamples.", "",
              "| model | val PR-AUC | test AUC [95% CI] | test PR-AUC [95% CI] | threshold | test alert rate | test precision | test recall |",
              "|---|---:|---|---|---:|---:|---:|---:|"]
        for name, m in t["models"].items():
            a = m["at_threshold"]
            L.append(f"| `{name}` | {m['val_pr_auc']:.3f} | {_ci(m)} | {_ci(m, 'pr_auc')} | {a['threshold']:.3f} | "
                     f"{a['alert_rate']:.2%} | {a['precision']:.2f} | {a['recall']:.2f} |")
        L += ["", f"Default `risk` = `{t['default']}` ({t['default_rule']}). Threshold rule: "
              f"{t['models'][t['default']]['threshold_rule']}. All figures above are synthetic: they show the pipeline "
              "works end to end, not how well real fraud would be caught.", "",
              "Global importance (logistic: |coef|·sd; MLP: drop in test PR-AUC when the feature is permuted):", ""]
        for name, m in t["models"].items():
            L.append(f"- `{name}`: {_top(m['importance'])}")
    return "\n".join(L) + "\n"
