"""Synthetic transaction risk (task ``transaction_risk``): the load-test scorer, not the served default.

Synthetic accounts and fraud from ``stream.tools.synthetic``, featurised by
``stream.core.features.replay_features`` (the functions the stream calls), split by time (first
2/3 of days train, next 1/6 validation, last 1/6 test). Logistic regression and an MLP; the
threshold is the lowest score whose validation precision is >= ``TXN_PRECISION_TARGET``, falling
back to the top-1% alert rate. All figures are synthetic: they show the pipeline runs, nothing
about real fraud (``training.risk_cards`` trains the served real-data model).
"""

from __future__ import annotations

import time

import numpy as np

from stream.core.features import TXN_FEATURE_LABELS, TXN_FEATURES, replay_features
from stream.core.manifest import ModelCard
from training.export import data_fingerprint, reference_distribution
from training.job import TrainContext
from training.models import MLP, Logistic
from training.risk_credit import _card_metrics
from training.risk_metrics import auc, classification_metrics, pr_auc, precision_threshold
from training.risk_models import check_parity, permutation_importance

TXN_PRECISION_TARGET = 0.5
TXN_ALERT_RATE_FALLBACK = 0.01
TXN_ACCOUNTS = 2500
TXN_DAYS = 60
TXN_FRAUD_RATE = 0.01


def synthetic_transactions(
    ctx: TrainContext, n_accounts: int = TXN_ACCOUNTS, days: int = TXN_DAYS, fraud_rate: float = TXN_FRAUD_RATE
):
    """Generate, clean (quality rules) and featurise synthetic transactions; returns (x, y, day index)."""
    import pandas as pd

    from stream.tools.synthetic import START_MS, generate_transactions
    from training.quality import clean_table

    recs = generate_transactions(n_accounts=n_accounts, days=days, fraud_rate=fraud_rate, seed=ctx.seed)
    df = pd.DataFrame.from_records(recs)
    df = clean_table(
        df,
        "synthetic_transactions",
        ctx.quality,
        non_negative=["amount", "ts"],
        required=["event_id", "account_id", "ts", "amount", "currency", "merchant_category", "channel", "country"],
        dedupe=True,
    )
    df = df.sort_values("ts", kind="stable")
    rows = zip(
        df["account_id"],
        df["ts"].astype("int64"),
        df["amount"].astype(float),
        df["country"],
        df["merchant_category"],
        df["channel"],
    )
    x = replay_features(ctx.progress(rows, desc="replay transactions", total=len(df)))
    y = df["is_fraud"].to_numpy(dtype=np.int64)
    day = ((df["ts"].to_numpy(dtype=np.int64) - START_MS) // 86_400_000).astype(np.int64)
    return x, y, day


def train_transactions(
    ctx: TrainContext,
    *,
    n_accounts: int = TXN_ACCOUNTS,
    days: int = TXN_DAYS,
    epochs: int = 12,
    export: bool = True,
    n_boot: int = 200,
) -> tuple[list[ModelCard], dict, str]:
    t0 = time.time()
    x, y, day = synthetic_transactions(ctx, n_accounts, days)
    names = list(TXN_FEATURES)
    cut_va, cut_te = int(days * 2 / 3), int(days * 5 / 6)
    tr, va, te = day < cut_va, (day >= cut_va) & (day < cut_te), day >= cut_te
    report = {
        "synthetic": True,
        "accounts": n_accounts,
        "days": days,
        "rows": int(len(y)),
        "fraud_rate": float(y.mean()),
        "split": {
            "train_days": [0, cut_va],
            "validation_days": [cut_va, cut_te],
            "test_days": [cut_te, days],
            "train_rows": int(tr.sum()),
            "validation_rows": int(va.sum()),
            "test_rows": int(te.sum()),
            "test_frauds": int(y[te].sum()),
        },
        "models": {},
    }

    lr = Logistic.fit(x[tr], y[tr], seed=ctx.seed, C=1.0)
    p = {"val": lr.predict(x[va]), "test": lr.predict(x[te])}
    mlp = MLP.fit(
        x[tr],
        y[tr],
        ctx.seed,
        validation=(x[va], y[va]),
        epochs=epochs,
        batch=512,
        monitor="val_pr_auc",
        patience=3,
        hidden=(32, 16),
        dropout=0.1,
        l2=1e-5,
    )
    q = {"val": mlp.predict(x[va]), "test": mlp.predict(x[te])}

    results = {}
    for name, fam, pr, model_imp in (
        ("txn_risk_logistic", "logistic", p, lambda: lr.importance(names)),
        (
            "txn_risk_mlp",
            "mlp",
            q,
            lambda: permutation_importance(
                mlp.predict,
                x[te],
                y[te],
                {n: [i] for i, n in enumerate(names)},
                metric=_pr_metric,
                repeats=2,
                seed=ctx.seed,
            ),
        ),
    ):
        thr, rule = precision_threshold(y[va], pr["val"], TXN_PRECISION_TARGET, TXN_ALERT_RATE_FALLBACK)
        m = classification_metrics(y[te], pr["test"], thr, ctx.seed, n_boot)
        m["val_pr_auc"] = pr_auc(y[va], pr["val"])
        m["val_auc"] = auc(y[va], pr["val"])
        m["threshold_rule"] = rule
        m["importance"] = dict(list(model_imp().items()))
        m["family"] = fam
        results[name] = m
    results["txn_risk_mlp"]["epochs"] = mlp.epochs
    winner = max(results, key=lambda k: results[k]["val_pr_auc"])
    report["models"] = results
    report["default"] = winner
    report["default_rule"] = "higher validation PR-AUC"

    cards = []
    if export:
        legit = x[tr][y[tr] == 0]
        common = dict(
            reference_distribution=reference_distribution(x[tr], names),
            data_fingerprint=data_fingerprint(x[tr], y[tr]),
            baseline=[float(v) for v in legit.mean(axis=0)],
            feature_labels=dict(TXN_FEATURE_LABELS),
        )
        extra = {
            "synthetic": True,
            "generator": f"stream.tools.synthetic.generate_transactions(n_accounts={n_accounts}, days={days}, "
            f"fraud_rate={TXN_FRAUD_RATE}, seed={ctx.seed})",
            "features_fn": "stream.core.features.replay_features",
            "split": report["split"],
            "baseline_rule": "mean of non-fraud training rows",
        }
        path = ctx.out_dir / "txn_risk_logistic.onnx"
        lr.export(path)
        results["txn_risk_logistic"]["onnx_max_abs_err"] = check_parity(path, x[te], p["test"], "txn_risk_logistic")
        path2 = ctx.out_dir / "txn_risk_mlp.onnx"
        mlp.export(path2)
        results["txn_risk_mlp"]["onnx_max_abs_err"] = check_parity(path2, x[te], q["test"], "txn_risk_mlp")
        for name, model, pth in (("txn_risk_logistic", lr, path), ("txn_risk_mlp", mlp, path2)):
            m = results[name]
            cards.append(
                model.card(
                    pth,
                    name,
                    task="transaction_risk",
                    features=names,
                    meaning=["probability the transaction is fraudulent (synthetic-trained)"],
                    threshold=m["at_threshold"]["threshold"],
                    metrics={**_card_metrics(m), "synthetic": True},
                    extra={**extra, "threshold_rule": m["threshold_rule"], "importance": m["importance"]},
                    **common,
                )
            )
    report["seconds"] = round(time.time() - t0, 1)
    return cards, report, winner


def _pr_metric(y, p):
    return pr_auc(y, p)
