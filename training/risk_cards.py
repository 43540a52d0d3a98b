"""The served risk model: real IEEE-CIS / Vesta card transactions, stream-computable features.

Each data row is mapped to a ``transactions`` contract record (``ieee_records``: the card id
from the card/address columns, the optional card fields), parsed by the stream's own parser and
featurised by ``stream.core.cardrisk`` (``served_features``: the same functions the worker calls).

Split by time (rows are in ``TransactionDT`` order): first 70% train, next 10% validation
(threshold and model choice), last 20% hold-out (the issue's anchors use the same last 20%);
each part is strictly later than the one before (asserted). Features of a row come from its
card's earlier rows only (the replay runs in event order), never from labels, except the static
tables (``stream.core.cardtables``: per card group / card id / region / e-mail / device / product
the training months' smoothed fraud rate and count), which are fitted on the fitting rows only and
given to those rows out of fold. Every model is fitted on the training days and scored on the
validation days (choice and threshold), then refitted the same way on training + validation days
(tables included: the recent days carry most signal) and that refit is scored on the hold-out and
exported.
Compared on the same rows: rules (amount z-score, 24 h velocity), L2 logistic regression and a
gradient-boosted model (scikit-learn HistGradientBoosting) on the served features; the same GBM
on the features served before (``gbm_previous_features``), on the stream's own features without
the processor's signals (``gbm_stream_only``; ``gbm_stream_no_tables`` also without the tables),
to show what each group adds; and a reference GBM that also gets the other 73 Vesta ``V`` columns
of the data (not served).
Served: the exportable model (logistic or GBM) with the higher validation PR-AUC; threshold =
the top 1% of validation scores of its training-days fit (a 1% alert budget). The GBM is written
as an ONNX tree ensemble (``export_gbm``); the worker needs only onnxruntime.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from stream.core.cardrisk import CARD_FEATURE_LABELS, CARD_FEATURES, STREAM_FEATURES, replay_card_features
from stream.core.cardtables import TABLE_FEATURES
from stream.core.manifest import ModelCard, TensorSpec
from training.export import data_fingerprint, make_card, reference_distribution
from training.job import TrainContext
from training.models.gbm import GBM, export_gbm
from training.models.logistic import winsor_bounds
from training.risk_card_rows import (  # noqa: F401  (re-exported: the tests and the bench read them here)
    as_served,
    card_events,
    card_sample,
    chrono_split,
    ieee_records,
    served_features,
    with_tables,
)
from training.risk_metrics import auc, bootstrap_ci, pr_auc, recall_at_budget
from training.risk_models import Logistic, check_parity, single_thread, skewed_columns

ALERT_BUDGET = 0.01
TARGET = {"auc": 0.85, "pr_auc": 0.30}
ANCHORS = {
    "raw_fields_gbm": {"auc": 0.805, "pr_auc": 0.19, "recall_at_1pct": 0.10},
    "raw_plus_card_history_gbm": {"auc": 0.808},
    "all_vesta_columns_gbm": {"auc": 0.894, "pr_auc": 0.50, "recall_at_1pct": 0.25},
}
# The features served before issue 10's second round, and the served set without the processor's signals.
PREVIOUS_FEATURES = (
    "log_amount",
    "amount_cents",
    "hour_of_day",
    *(f"product_{p}" for p in "WCRHS"),
    "card_type",
    "card_country",
    "billing_region",
    "billing_country",
    "email_group",
    "device_family",
    "first_transaction",
    "log_secs_since_last",
    "txn_count_1h",
    "txn_count_24h",
    "txn_count_7d",
    "spend_24h_ratio",
    "amount_z",
    "amount_ratio",
    "same_amount_as_last",
    "distinct_emails",
    "distinct_devices",
    "distinct_products",
    "distinct_regions",
    "new_email",
    "new_device",
    "new_product",
    "new_region",
)
ABLATIONS = {
    "gbm_previous_features": PREVIOUS_FEATURES,
    "gbm_stream_no_tables": STREAM_FEATURES,
    "gbm_stream_only": STREAM_FEATURES + TABLE_FEATURES,
}
# The logistic's winsorising: each column clipped to its [q, 1 - q] quantiles of the fitting rows.
# Chosen on validation PR-AUC among 0.01 / 0.001 / 0.0001 (docs/risk.md); the trees need no clip.
LOGISTIC_CLIP = 0.001
GBM_PARAMS = dict(max_iter=250, learning_rate=0.08, max_leaf_nodes=31, min_samples_leaf=50, l2_regularization=1.0)


def fit_gbm(x: np.ndarray, y: np.ndarray, seed: int, legit_share: float = 0.5):
    """HistGradientBoosting (``training.models.GBM``) on all frauds and a seeded share of legitimate
    rows (weighted back up). Callers predict inside ``single_thread()`` too (see there why)."""
    return GBM.fit(x, y, seed, legit_share=legit_share, **GBM_PARAMS).model


def evaluate(y: np.ndarray, p: np.ndarray, seed: int, n_boot: int) -> dict:
    """AUC, PR-AUC and recall at the 1% alert budget, each with a stratified bootstrap 95% CI."""
    y = np.asarray(y, np.int64)
    p = np.asarray(p, np.float64).reshape(-1)
    out = {"n": int(len(y)), "positives": int(y.sum())}
    for key, fn, n in (
        ("auc", auc, n_boot),
        ("pr_auc", pr_auc, n_boot),
        ("recall_at_1pct", lambda a, b: recall_at_budget(a, b, ALERT_BUDGET), n_boot),
    ):
        out[key] = fn(y, p)
        out[f"{key}_ci95"] = list(bootstrap_ci(fn, y, p, n=n, seed=seed, stratify=y))
    return out


def train_card_risk(
    ctx: TrainContext, df: pd.DataFrame | None = None, *, share: float = 1.0, n_boot: int = 100, export: bool = True
) -> tuple[list[ModelCard], dict, str]:
    """Train, compare and export the real-data card risk models; returns (cards, report, served name)."""
    from training.data import fraud

    t0 = time.time()
    full = df if df is not None else fraud.load_ieee_cis(ctx.cache_dir, ctx.quality)
    df = card_sample(full, share)
    y = df["isFraud"].to_numpy(np.int64)
    events = card_events(ieee_records(df), ctx.progress)
    x0 = replay_card_features(events)  # table columns filled below, per fit
    dt = df["TransactionDT"].to_numpy()
    tr, va, te = chrono_split(len(y), t=dt)
    assert dt[tr].max() < dt[va].min() and dt[va].max() < dt[te].min(), "hold-out must be strictly later"
    fit = slice(0, va.stop)  # the refit: training + validation days
    x, _ = with_tables(x0, events, y, tr, slice(va.start, te.stop))  # choice: tables of the training days
    xf, tables = with_tables(x0, events, y, fit, te)  # refit and hold-out: tables of training + validation
    del x0
    days = (dt // 86400).astype(int)
    F = {n: i for i, n in enumerate(CARD_FEATURES)}
    report = {
        "rows_total": int(len(full)),
        "rows_used": int(len(y)),
        "card_share": share,
        "fraud_rate": float(y.mean()),
        "features": list(CARD_FEATURES),
        "targets": TARGET,
        "anchors": ANCHORS,
        "protocol": "fit on training days, choose and set the threshold on validation days, refit on training + "
        "validation days (static tables too), hold-out figures from the refit",
        "tables": {k: len(v) for k, v in tables.tables.items()},
        "split": {
            "train_days": [int(days[tr][0]), int(days[tr][-1])],
            "validation_days": [int(days[va][0]), int(days[va][-1])],
            "holdout_days": [int(days[te][0]), int(days[te][-1])],
            "train_rows": int(len(y[tr])),
            "validation_rows": int(len(y[va])),
            "holdout_rows": int(len(y[te])),
            "holdout_frauds": int(y[te].sum()),
            "train_last_dt": int(dt[tr].max()),
            "holdout_first_dt": int(dt[te].min()),
        },
        "models": {},
    }
    # (validation scores of the training-days fit, hold-out scores of the refit)
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "rule_amount_z": (x[va, F["amount_z"]], xf[te, F["amount_z"]]),
        "rule_velocity_24h": (x[va, F["txn_count_24h"]], xf[te, F["txn_count_24h"]]),
    }
    # The same legitimate card twice took most of the logistic's top 1% of hold-out scores: its
    # processor fields ran far past the training range (sig_V317 first, sig_V308 / sig_V323 after the
    # retrain) and a linear score extrapolates. So every column is winsorised to bounds fitted on
    # the fitting rows (LOGISTIC_CLIP, chosen on validation), and log1p(x) sits next to x for the
    # skewed non-negative columns of the clipped training rows (the credit models' rule; docs/risk.md)
    log_cols = skewed_columns(np.clip(x[tr], *winsor_bounds(x[tr], LOGISTIC_CLIP)), x.shape[1])
    lr_val = Logistic.fit(x[tr], y[tr], seed=ctx.seed, C=0.1, log_cols=log_cols, clip_quantile=LOGISTIC_CLIP)
    lr = Logistic.fit(xf[fit], y[fit], seed=ctx.seed, C=0.1, log_cols=log_cols, clip_quantile=LOGISTIC_CLIP)
    report["logistic_log1p_features"] = [CARD_FEATURES[i] for i in log_cols]
    report["logistic_clip_quantile"] = LOGISTIC_CLIP
    scores["card_risk_logistic"] = (lr_val.predict(x[va]), lr.predict(xf[te]))
    with single_thread():
        for name, cols in ({} if ctx.models_only else ABLATIONS).items():  # what each group adds (report only)
            idx = [F[c] for c in cols]
            m = fit_gbm(x[tr][:, idx], y[tr], ctx.seed)
            mf = fit_gbm(xf[fit][:, idx], y[fit], ctx.seed)
            scores[name] = (m.predict_proba(x[va][:, idx])[:, 1], mf.predict_proba(xf[te][:, idx])[:, 1])
        gbm_val = fit_gbm(x[tr], y[tr], ctx.seed)
        gbm = fit_gbm(xf[fit], y[fit], ctx.seed)
        scores["card_risk_gbm"] = (gbm_val.predict_proba(x[va])[:, 1], gbm.predict_proba(xf[te])[:, 1])
        if not ctx.models_only:  # the reference with every Vesta V column (report only, not served)
            vesta = df[[c for c in df.columns if c[0] in "V" and c[1:].isdigit() and f"sig_{c}" not in F]]
            vesta = vesta.to_numpy(np.float32)
            xr = np.concatenate([x, vesta], axis=1)
            ref = fit_gbm(xr[tr], y[tr], ctx.seed)
            pv = ref.predict_proba(xr[va])[:, 1]
            xr = np.concatenate([xf, vesta], axis=1)
            ref = fit_gbm(xr[fit], y[fit], ctx.seed)
            scores["reference_gbm_plus_all_v"] = (pv, ref.predict_proba(xr[te])[:, 1])
            del xr, vesta
    for name, (pv, pt) in scores.items():
        m = evaluate(y[te], pt, ctx.seed, n_boot)
        m["val_auc"], m["val_pr_auc"] = auc(y[va], pv), pr_auc(y[va], pv)
        report["models"][name] = m
    exportable = ("card_risk_logistic", "card_risk_gbm")
    served = max(exportable, key=lambda k: report["models"][k]["val_pr_auc"])
    report["default"] = served
    report["default_rule"] = "higher validation PR-AUC among the exportable live-feature models"
    report["served_vs_target"] = {k: report["models"][served][k] - v for k, v in TARGET.items()}
    if "gbm_stream_only" in report["models"]:  # absent in a models-only run
        report["stream_only_vs_target"] = {k: report["models"]["gbm_stream_only"][k] - v for k, v in TARGET.items()}

    cards: list[ModelCard] = []
    if export:
        inputs = [TensorSpec("features", [None, len(CARD_FEATURES)], features=list(CARD_FEATURES))]
        outputs = [TensorSpec("score", [None, 1], meaning=["probability the card transaction is fraudulent"])]
        legit = xf[fit][y[fit] == 0]
        common = dict(
            reference_distribution=reference_distribution(as_served(xf, events, tables, fit), CARD_FEATURES),
            data_fingerprint=data_fingerprint(xf[fit], y[fit]),
            baseline=[float(v) for v in legit.mean(axis=0)],
            feature_labels=dict(CARD_FEATURE_LABELS),
        )
        for name, fam in (("card_risk_logistic", "logistic"), ("card_risk_gbm", "gbm")):
            path = ctx.out_dir / f"{name}.onnx"
            if fam == "logistic":
                lr.export(path)
                err = check_parity(path, xf[te], scores[name][1], name)
            else:
                export_gbm(gbm, len(CARD_FEATURES), path)
                err = check_parity(path, xf[te], scores[name][1], name, tol=1e-4)
            m = report["models"][name]
            m["onnx_max_abs_err"] = err
            thr = float(np.quantile(scores[name][0], 1 - ALERT_BUDGET))
            alert = scores[name][1] >= thr
            m["at_threshold"] = {
                "threshold": thr,
                "alert_rate": float(alert.mean()),
                "precision": float(y[te][alert].mean()) if alert.any() else 0.0,
                "recall": float(y[te][alert].sum() / max(y[te].sum(), 1)),
            }
            cards.append(
                make_card(
                    name,
                    "transaction_risk",
                    fam,
                    path,
                    inputs,
                    outputs,
                    threshold=thr,
                    metrics={
                        k: m[k]
                        for k in (
                            "auc",
                            "auc_ci95",
                            "pr_auc",
                            "pr_auc_ci95",
                            "recall_at_1pct",
                            "recall_at_1pct_ci95",
                            "val_auc",
                            "val_pr_auc",
                            "onnx_max_abs_err",
                            "at_threshold",
                            "n",
                            "positives",
                        )
                    },
                    extra={
                        "source": f"IEEE-CIS / Vesta via PyPI {fraud.IEEE_CIS.package}=={fraud.IEEE_CIS.version} "
                        f"(sha256 {fraud.IEEE_CIS.sha256[:12]}…)",
                        "features_fn": "stream.core.cardrisk.replay_card_features",
                        "split": report["split"],
                        "card_share": share,
                        "threshold_rule": "top 1% of the validation scores of the training-days fit",
                        "baseline_rule": "mean of non-fraud training + validation rows",
                        "fit_rows": "training + validation days",
                        "tables": tables.to_dict(),
                    },
                    **common,
                )
            )
    report["seconds"] = round(time.time() - t0, 1)
    return cards, report, served
