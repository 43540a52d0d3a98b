"""Credit default (three real data sets) and a continuous credit-loss proxy (lending_club int_rate).

Credit default (task ``credit_default``), per data set (German, credit_data, lending_club):
L2 logistic regression, gradient-boosted trees, a small Keras MLP and the mean of the logistic's
and the GBM's probabilities (one merged ONNX graph), all taking the same input row: numeric
columns (filled and winsorised with training-part statistics) and one-hot ``col=level`` columns (the standardisation is folded into the ONNX graphs). The family is chosen
by repeated stratified CV over all labelled rows (``training.credit_cv``: preprocessing fitted
inside each fold; none of the three sets ships its own test split), and every family is refitted
on all rows before export. Every figure is cross-validated: the mean fold AUC with its interval
decides, and the pooled out-of-fold predictions of the first repeat give AUC (bootstrap 95% CI),
PR-AUC, Brier score and the alert threshold. The cards say which family CV chose.

Credit loss (task ``credit_loss``): linear regression of lending_club ``int_rate`` on applicant
features (no grade), reported as test R^2/RMSE against the mean-only baseline on a single
stratified split (not cross-validated).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from stream.core.manifest import ModelCard
from training.credit_cv import (
    ENSEMBLES,
    FAMILIES,
    FOLDS,
    RECODED,
    REPEATS,
    SET_FAMILIES,
    Fitted,
    choose,
    cross_validate,
    fit_family,
    mean_of,
    recode_spec,
)
from training.export import data_fingerprint, reference_distribution
from training.job import TrainContext
from training.models import GBM, MLP, LinearRegression, MeanEnsemble
from training.risk_metrics import N_BOOT, bootstrap_ci, classification_metrics
from training.risk_models import check_parity, skewed_columns, stratified_split

CREDIT_NAMES = {"german": "german_credit", "credit_data": "credit_data", "lending_club": "lending_club"}
CREDIT_TARGETS = {"german": 0.79, "credit_data": 0.84, "lending_club": 0.74}
# lending_club (5% bad, 115 columns) needs a much more regularised net than the other two.
MLP_CONFIG = {
    "default": dict(hidden=(32, 16), dropout=0.3, l2=1e-3, lr=2e-3, batch=64),
    "credit_data": dict(hidden=(32, 16), dropout=0.3, l2=1e-3, lr=2e-3, batch=128),
    "lending_club": dict(hidden=(16,), dropout=0.5, l2=1e-2, lr=1e-3, batch=256),
}


def train_credit(
    ctx: TrainContext,
    dataset: str,
    *,
    export: bool = True,
    n_boot: int = N_BOOT,
    cs=None,
    folds: int = FOLDS,
    cv_repeats: int | dict | None = None,
    families=None,
    max_epochs: int = 30,
) -> tuple[list[ModelCard], dict]:
    """Candidates by repeated stratified CV over all rows, every family refitted on all rows and
    exported (the manifest names the chosen one in its card), so the batch scorer can use any.
    ``families`` defaults to the set's candidates (``SET_FAMILIES``, else ``FAMILIES``)."""
    from training.data import credit

    t0 = time.time()
    families = families or SET_FAMILIES.get(dataset, FAMILIES)
    cs = cs or credit.load(dataset, ctx.cache_dir, ctx.quality)
    y = cs.y
    rows = np.arange(len(y))
    repeats = REPEATS if cv_repeats is None else cv_repeats
    per = repeats if isinstance(repeats, dict) else {f: repeats for f in families}
    base = CREDIT_NAMES[dataset]
    cfg = MLP_CONFIG.get(dataset, MLP_CONFIG["default"])
    cv = cross_validate(cs, rows, ctx.seed, cfg, folds=folds, repeats=per, families=families, max_epochs=max_epochs)
    chosen = choose(cv)
    encoding = cs.fit_encoding(rows, ctx.quality)  # the refit's fills and bounds: all rows (CV fitted per fold)
    x, names = cs.features(encoding)
    reps = ", ".join(f"{f} {per[f]}" for f in families)
    report = {
        "dataset": dataset,
        "rows": int(len(y)),
        "bad_rate": float(y.mean()),
        "features": len(names),
        "target_auc": CREDIT_TARGETS[dataset],
        "fit_rows": int(len(rows)),
        "protocol": f"repeated stratified {folds}-fold CV over all rows (repeats: {reps}), preprocessing fitted "
        "inside each training fold; every family refitted on all rows",
        "folds": folds,
        "repeats": {f: per[f] for f in families},
        "chosen": f"{base}_{chosen}",
        "cv": {},
        "models": {},
    }
    extra = {
        "encoding": encoding,
        "source": cs.source,
        "target": f"{cs.target} (1 = bad)",
        "split": f"none: fitted on all {len(rows)} rows; figures from repeated stratified {folds}-fold CV, seed {ctx.seed}",
        "threshold_rule": "Youden's J on out-of-fold CV predictions (first repeat)",
    }
    common = dict(
        reference_distribution=reference_distribution(x, names),
        data_fingerprint=data_fingerprint(x, y),
        baseline=[float(v) for v in x.mean(axis=0)],
        feature_labels=credit_labels(names),
    )
    cards = []
    refits: dict[str, Fitted] = {}
    for fam in sorted(families, key=lambda f: f in ENSEMBLES):  # an ensemble averages its members' refits
        c = cv[fam]
        name = f"{base}_{fam}"
        report["cv"][name] = {k: c[k] for k in ("auc", "auc_ci95", "folds", "repeats", "auc_shared", "fold_aucs")}
        epochs = int(np.median(c["epochs"])) if c["epochs"] else None
        if fam in ENSEMBLES:
            fit = mean_of([refits[f] for f in ENSEMBLES[fam]], fam)
        else:  # refit on all rows
            fit = fit_family(fam, x, y, len(cs.numeric), ctx.seed, cfg, epochs=epochs, spec=recode_spec(cs, fam))
        refits[fam] = fit
        # Out-of-fold figures of the first repeat (each row scored by a model that never saw it).
        m = classification_metrics(y, c["oof"], c["threshold"], ctx.seed, n_boot)
        m.update(cv_auc=c["auc"], cv_auc_ci95=c["auc_ci95"], cv_folds=c["folds"], chosen=fam == chosen)
        if epochs:
            m["epochs"] = epochs
        if fam in RECODED and RECODED[fam]["inner"] == "logistic":
            m["C"], m["l1_ratio"] = fit.model.inner.C, fit.model.inner.l1_ratio
        if fam == "logistic":
            m["C"] = fit.model.C
            m["importance_abs_coef_x_sd"] = dict(list(fit.model.importance(names).items())[:10])
        else:
            m["importance_permutation_auc_drop"] = dict(list(c["importance"].items())[:10])
        report["models"][name] = {"family": fam, **m}
        if export:
            path = ctx.out_dir / f"{name}.onnx"
            model = served_model(fit)
            model.export(path)  # tolerance: 1e-4 with trees (float32 leaf sums), else 1e-5
            m["onnx_max_abs_err"] = check_parity(path, x, fit.predict(x), name, tol=model.tolerance)
            cards.append(
                model.card(
                    path,
                    name,
                    task="credit_default",
                    features=list(names),
                    meaning=["probability of default (bad)"],
                    threshold=c["threshold"],
                    metrics=_card_metrics(m),
                    extra={**extra, "in_graph_log1p": [names[i] for i in fit.log_cols], "chosen_by_cv": fam == chosen},
                    **common,
                )
            )
    report["seconds"] = round(time.time() - t0, 1)
    return cards, report


def served_model(fit: Fitted):
    """The ``TrainableModel`` to export for a credit fit (the ensemble: one merged graph of its members)."""
    if fit.family in ENSEMBLES:
        return MeanEnsemble([served_model(f) for f in fit.model])
    return {"gbm": GBM, "mlp": MLP}[fit.family](fit.model) if fit.family in ("gbm", "mlp") else fit.model


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
    keys = (
        "auc",
        "auc_ci95",
        "pr_auc",
        "pr_auc_ci95",
        "brier",
        "n",
        "positives",
        "val_auc",
        "at_threshold",
        "r2",
        "r2_ci95",
        "rmse",
        "mae",
        "baseline_rmse",
        "onnx_max_abs_err",
        "val_pr_auc",
        "cv_auc",
        "cv_auc_ci95",
        "cv_folds",
        "chosen",
    )
    return {k: m[k] for k in keys if k in m}


def train_credit_loss(
    ctx: TrainContext, cs=None, export: bool = True, n_boot: int = N_BOOT
) -> tuple[list[ModelCard], dict]:
    """Linear regression of lending_club int_rate (%) on applicant features (no grade)."""
    from training.data import credit

    cs = cs or credit.load("lending_club", ctx.cache_dir, ctx.quality)
    view = credit.loss_view(cs)
    y = view.y
    tr, va, te = stratified_split(cs.y, ctx.seed)  # same rows as the default models
    fit_idx = np.concatenate([tr, va])
    enc = view.fit_encoding(fit_idx)  # fills and winsorising bounds: training rows only
    x, names = view.features(enc)
    log_cols = skewed_columns(x[fit_idx], len(view.numeric))
    reg = LinearRegression.fit(x[fit_idx], y[fit_idx], ctx.seed, log_cols=log_cols)
    pred = reg.predict(x[te])

    def r2(a, b):
        return float(1 - np.sum((a - b) ** 2) / np.sum((a - a.mean()) ** 2))

    lo, hi = bootstrap_ci(r2, y[te], pred, n=n_boot, seed=ctx.seed)
    m = {
        "r2": r2(y[te], pred),
        "r2_ci95": [lo, hi],
        "rmse": float(np.sqrt(np.mean((y[te] - pred) ** 2))),
        "mae": float(np.mean(np.abs(y[te] - pred))),
        "baseline_rmse": float(np.sqrt(np.mean((y[te] - y[fit_idx].mean()) ** 2))),
        "n": int(len(te)),
        "alpha": reg.alpha,
    }
    m["importance_abs_coef_x_sd"] = dict(list(reg.importance(names).items())[:10])
    cards = []
    name = "lending_club_int_rate_linear"
    if export:
        path = ctx.out_dir / f"{name}.onnx"
        reg.export(path)
        m["onnx_max_abs_err"] = check_parity(path, x[te], pred, name, tol=1e-3)  # % points; float32 graph
        cards.append(
            reg.card(
                path,
                name,
                features=list(names),
                meaning=["predicted interest rate (%)"],
                metrics=_card_metrics(m),
                reference_distribution=reference_distribution(x[fit_idx], names),
                data_fingerprint=data_fingerprint(x[fit_idx], y[fit_idx]),
                baseline=[float(v) for v in x[fit_idx].mean(0)],
                feature_labels=credit_labels(names),
                extra={
                    "encoding": enc,
                    "source": cs.source,
                    "target": "int_rate (%)",
                    "alpha": reg.alpha,
                    "in_graph_log1p": [names[i] for i in log_cols],
                    "split": "train+validation of the lending_club default split; test = its test split",
                    "importance": m["importance_abs_coef_x_sd"],
                },
            )
        )
    return cards, {"dataset": "lending_club", "target": "int_rate", "features": len(names), **m}
