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

from training.data.credit import feature_names
from training.models.recoded import Recoded, RecodeSpec
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
# Candidates of the credit7 round (issue 10), declared before any of them was run and run once:
# the row recoded (``training.models.recoded``: the set's ordered categoricals as one rank each,
# optionally a spline of ``SPLINES``) in front of an L2 logistic (``ordinal``, ``spline``), a logistic
# whose penalty (L1 or L2) and C over a wider grid are chosen by the inner CV (``penalised``), and a
# GBM constrained to rise with the rate and the grade (``gbm_monotone``).
WIDE_CS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # 10x stronger than LOGISTIC_CS and finer (L1 at C 3: 1.3 s a fit)
RECODED = {
    "ordinal": dict(inner="logistic", spline=False),
    "spline": dict(inner="logistic", spline=True),
    "penalised": dict(inner="logistic", spline=True, Cs=WIDE_CS, l1_ratios=(0.0, 1.0)),
    "gbm_monotone": dict(inner="gbm", spline=False, monotone={"int_rate": 1, "sub_grade (rank)": 1}),
}
SPLINES = {"lending_club": {"int_rate": 4}}  # interior knots at the fold's training quintiles
# Each ensemble is the mean of its members' probabilities from the same fold's fits (no fit of its own).
ENSEMBLES = {
    "ensemble": ENSEMBLE_MEMBERS,
    "ensemble_monotone": ("penalised", "gbm_monotone"),  # the most flexible linear + the monotone trees
    "ensemble_ordinal": ("ordinal", "gbm"),  # German: the served ensemble with the ordinal logistic
}
SET_FAMILIES = {
    "lending_club": (*FAMILIES, "ordinal", "spline", "penalised", "gbm_monotone", "ensemble_monotone"),
    "german": (*FAMILIES, "ordinal", "ensemble_ordinal"),
}
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
REPEATS = {"logistic": 5, "gbm": 5, "mlp": 1} | {f: 5 for f in (*RECODED, *ENSEMBLES)}
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
    spec: RecodeSpec | None = None,
) -> Fitted:
    """Fit one family on encoded training rows; every statistic comes from ``x``/``y`` only.

    ``epochs=None`` (inside CV) early-stops the MLP on an inner 15% of these rows; a number (the
    final refit) trains for exactly that many epochs on all of them. The ``RECODED`` families need
    the set's ``spec`` (``recode_spec``); their knots, log1p columns, C and penalty come from ``x``.
    """
    if family in RECODED:
        cfg = RECODED[family]
        if cfg["inner"] == "gbm":
            params = dict(GBM_CREDIT, monotone=cfg["monotone"])
        else:
            params = dict(Cs=cfg.get("Cs", LOGISTIC_CS), cv=3, log_numeric=n_numeric)
            params |= {"l1_ratios": cfg["l1_ratios"]} if "l1_ratios" in cfg else {}
        m = Recoded.fit(x, y, seed, spec=spec, inner=cfg["inner"], **params)
        return Fitted(family, m, m.predict, m.log_cols)
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


def recode_spec(cs, family: str) -> RecodeSpec | None:
    """What a ``RECODED`` family recodes on ``cs`` (None for the others): its ordered columns, and
    the spline of ``SPLINES`` when the family asks for one."""
    if family not in RECODED:
        return None
    spline = SPLINES.get(cs.name, {}) if RECODED[family]["spline"] else {}
    return RecodeSpec(tuple(feature_names(cs.encoding)), cs.ordered, spline)


def mean_of(members: list[Fitted], family: str = "ensemble") -> Fitted:
    """The ensemble of fitted members: the mean of their probabilities (what ``MeanEnsemble`` serves)."""
    log_cols = sorted(set().union(*(m.log_cols for m in members)))  # the in-graph log1p of its members
    return Fitted(family, members, lambda a: np.mean([m.predict(a) for m in members], axis=0), log_cols)


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
    for e in (f for f in families if f in ENSEMBLES):
        if any(per.get(m, 0) < per[e] for m in ENSEMBLES[e]):
            raise ValueError(f"{e} needs its members {ENSEMBLES[e]} in at least as many repeats")
    for k, (a, b) in enumerate(splits):
        todo = sorted((f for f in families if k // folds < per[f]), key=lambda f: f in ENSEMBLES)  # members first
        x, _ = cs.features(cs.fit_encoding(rows[a]))  # fills and bounds from this fold's training rows
        xa, xb = x[rows[a]], x[rows[b]]
        fits: dict[str, Fitted] = {}
        for f in todo:
            if f in ENSEMBLES:  # the members' fits of this very fold, averaged
                fit = mean_of([fits[m] for m in ENSEMBLES[f]], f)
            else:
                spec = recode_spec(cs, f)
                fit = fit_family(f, xa, y[a], len(cs.numeric), seed + k, mlp_cfg, max_epochs=max_epochs, spec=spec)
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
