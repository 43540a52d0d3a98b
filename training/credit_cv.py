"""Model choice for the credit sets by repeated stratified cross-validation over all labelled rows.

Protocol (issue 10, item 2, the one ``training.propensity`` uses for Caravan): no hold-out is set
aside; every candidate family (L2 logistic regression, gradient-boosted trees, a small Keras MLP,
the mean of the first two) runs the same repeated stratified k folds over all rows of the set. The cheap families run every
repeat; the MLP (about 12 s a fold on the shared 2-core machine) only the first ``REPEATS["mlp"]``
ones, so the risk job stays within its time budget. Inside each fold *all* preprocessing is fitted
on the fold's training rows only: fills and winsorising bounds (``CreditSet.fit_encoding``), the
log1p columns, the standardisation, the logistic C (inner CV) and the MLP's early-stopping epoch
(an inner stratified 15% of the fold's training rows). The ``ensemble`` family is the mean of the
logistic's and the GBM's probabilities (``ENSEMBLE_MEMBERS``) on the same fold: no fit of its own,
so it costs nothing and is compared on exactly the members' splits; it is served as one merged
ONNX graph (``training.models.MeanEnsemble``). The family with the highest mean CV AUC is
chosen (compared on the folds all families ran); the caller refits it on all rows (the MLP for the median early-stopping epoch count of its
folds). The alert threshold is Youden's J on out-of-fold predictions of the first repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from training.risk_metrics import auc, youden_threshold
from training.risk_models import (
    Logistic,
    column_groups,
    fit_mlp,
    keras_mlp,
    keras_predict,
    log_augment,
    permutation_importance,
    set_seed,
    single_thread,
    skewed_columns,
)

FAMILIES = ("logistic", "gbm", "mlp", "ensemble")
ENSEMBLE_MEMBERS = ("logistic", "gbm")  # deterministic members: the merged file is byte-reproducible
GBM_CREDIT = dict(
    max_iter=200,
    learning_rate=0.05,
    max_leaf_nodes=15,
    min_samples_leaf=20,
    l2_regularization=1.0,
    early_stopping=False,
)
LOGISTIC_CS = (0.01, 0.1, 1.0)
FOLDS = 5
# Repeats per family in ``finstream train``: logistic and GBM cost about a second a fold, the MLP
# about 12 s (its first repeat alone is 5 fits a set), so only it runs a single repeat.
REPEATS = {"logistic": 5, "gbm": 5, "mlp": 1, "ensemble": 5}
STEPS_PER_EXECUTION = 32  # Keras runs 32 batches per call: the per-step Python overhead dominated small folds


@dataclass
class Fitted:
    """One fitted candidate: ``predict`` on encoded rows, plus what the export needs."""

    family: str
    model: object
    predict: Callable[[np.ndarray], np.ndarray]
    log_cols: list[int] = field(default_factory=list)
    epochs: int | None = None


def fit_family(
    family: str,
    x: np.ndarray,
    y: np.ndarray,
    n_numeric: int,
    seed: int,
    mlp_cfg: dict,
    epochs: int | None = None,
    max_epochs: int = 30,
) -> Fitted:
    """Fit one family on encoded training rows; every statistic comes from ``x``/``y`` only.

    ``epochs=None`` (inside CV) early-stops the MLP on an inner 15% of these rows; a number (the
    final refit) trains for exactly that many epochs on all of them.
    """
    log_cols = skewed_columns(x, n_numeric)
    if family == "logistic":
        m = Logistic.fit(x, y, seed=seed, Cs=LOGISTIC_CS, cv=3, log_cols=log_cols)
        return Fitted(family, m, m.predict, log_cols)
    if family == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        with single_thread():
            g = HistGradientBoostingClassifier(random_state=seed, **GBM_CREDIT).fit(x, y)

        def predict(a):
            with single_thread():
                return g.predict_proba(a)[:, 1]

        return Fitted(family, g, predict, [])
    if family == "mlp":
        cfg = dict(mlp_cfg)
        batch = cfg.pop("batch")
        if epochs is None:
            from sklearn.model_selection import train_test_split

            a, b = train_test_split(np.arange(len(y)), test_size=0.15, stratify=y, random_state=seed)
            model, n_ep = fit_mlp(
                x[a],
                y[a],
                x[b],
                y[b],
                seed=seed,
                epochs=max_epochs,
                batch=batch,
                log_cols=log_cols,
                patience=5,
                steps_per_execution=STEPS_PER_EXECUTION,
                **cfg,
            )
        else:
            set_seed(seed)
            aug = log_augment(x, log_cols)
            sd = aug.std(axis=0)
            model = keras_mlp(
                x.shape[1],
                aug.mean(axis=0),
                np.where(sd > 0, sd, 1.0),
                log_cols,
                seed=seed,
                steps_per_execution=STEPS_PER_EXECUTION,
                **cfg,
            )
            model.fit(
                np.asarray(x, np.float32),
                y.astype(np.float32),
                epochs=epochs,
                batch_size=batch,
                verbose=0,
                shuffle=True,
            )
            n_ep = epochs
        return Fitted(family, model, lambda a: keras_predict(model, a), log_cols, n_ep)
    raise ValueError(f"unknown family {family!r}")


def mean_of(members: list[Fitted]) -> Fitted:
    """The ensemble of fitted members: the mean of their probabilities (what ``MeanEnsemble`` serves)."""
    log_cols = sorted(set().union(*(m.log_cols for m in members)))  # the in-graph log1p of its members
    return Fitted("ensemble", members, lambda a: np.mean([m.predict(a) for m in members], axis=0), log_cols)


def cross_validate(
    cs,
    rows: np.ndarray,
    seed: int,
    mlp_cfg: dict,
    *,
    folds: int = FOLDS,
    repeats: int | dict = 2,
    families=FAMILIES,
    max_epochs: int = 30,
) -> dict:
    """Repeated stratified k-fold AUC of each family over ``rows`` (indices into ``cs.frame``),
    preprocessing fitted inside each training fold. ``repeats`` is one number or one per family
    (a family runs the first ``repeats[f]`` repeats of the same splits). Returns per family: mean
    AUC, a 95% interval (mean +- 1.96 sd / sqrt(k), deliberately wide: repeated folds are
    correlated), the fold AUCs, out-of-fold predictions of the first repeat, for GBM and MLP the
    permutation importance on the first fold's held-out rows and, for the MLP, the early-stopping
    epochs."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    per = repeats if isinstance(repeats, dict) else {f: repeats for f in families}
    rows = np.asarray(rows)
    y = cs.y[rows]
    out = {f: {"fold_aucs": [], "oof": np.full(len(rows), np.nan), "epochs": []} for f in families}
    n_rep = max(per[f] for f in families)
    splits = RepeatedStratifiedKFold(n_splits=folds, n_repeats=n_rep, random_state=seed).split(rows, y)
    if "ensemble" in families and any(per.get(m, 0) < per["ensemble"] for m in ENSEMBLE_MEMBERS):
        raise ValueError(f"the ensemble needs its members {ENSEMBLE_MEMBERS} in at least as many repeats")
    for k, (a, b) in enumerate(splits):
        todo = sorted((f for f in families if k // folds < per[f]), key=lambda f: f == "ensemble")  # members first
        x, _ = cs.features(cs.fit_encoding(rows[a]))  # fills and bounds from this fold's training rows
        xa, xb = x[rows[a]], x[rows[b]]
        fits: dict[str, Fitted] = {}
        for f in todo:
            if f == "ensemble":  # the members' fits of this very fold, averaged
                fit = mean_of([fits[m] for m in ENSEMBLE_MEMBERS])
            else:
                fit = fit_family(f, xa, y[a], len(cs.numeric), seed + k, mlp_cfg, max_epochs=max_epochs)
            fits[f] = fit
            p = fit.predict(xb)
            out[f]["fold_aucs"].append(auc(y[b], p))
            if k < folds:
                out[f]["oof"][b] = p
            if k == 0 and f != "logistic":  # the logistic's importance is its |coef|.sd
                out[f]["importance"] = permutation_importance(
                    fit.predict, xb, y[b], column_groups(cs.encoding), seed=seed
                )
            if fit.epochs is not None:
                out[f]["epochs"].append(fit.epochs)
    for f, r in out.items():
        a = np.asarray(r["fold_aucs"])
        half = 1.96 * a.std(ddof=1) / np.sqrt(folds)
        r.update(
            auc=float(a.mean()),
            auc_ci95=[float(a.mean() - half), float(a.mean() + half)],
            folds=len(a),
            repeats=per[f],
            threshold=youden_threshold(y, r["oof"]),
        )
    return out


def choose(cv: dict) -> str:
    """The family with the highest mean AUC over the folds *every* family ran (the same splits, so
    a paired comparison; a family with fewer, noisier folds gets no winner's-curse edge); ties go
    to the simpler one, in ``FAMILIES`` order. Also stores that mean as ``auc_shared``."""
    n = min(len(r["fold_aucs"]) for r in cv.values())
    for r in cv.values():
        r["auc_shared"] = float(np.mean(r["fold_aucs"][:n]))
    order = [f for f in FAMILIES if f in cv] + [f for f in cv if f not in FAMILIES]
    return max(order, key=lambda f: (cv[f]["auc_shared"], -order.index(f)))
