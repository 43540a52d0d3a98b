"""The ULB credit-card set as a second, tabular fraud benchmark (report only, nothing served).

284,807 European card transactions over two days (492 frauds), features V1..V28 (PCA of
undisclosed fields), ``Time`` and ``Amount``; no card id, so no history features. Chronological
split (first 80% by ``Time`` train, last 20% test), the same families as the served model:
logistic regression and HistGradientBoosting. Published context: most results on this set use
random splits (AUPRC around 0.8 with boosted trees); a chronological split over two days is
harder and gives lower figures.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from training.job import TrainContext
from training.risk_cards import evaluate, fit_gbm
from training.risk_models import Logistic, single_thread


def ulb_benchmark(ctx: TrainContext, df: pd.DataFrame | None = None, n_boot: int = 100) -> dict:
    from training.data import fraud

    t0 = time.time()
    df = df if df is not None else fraud.load_ulb(ctx.cache_dir, ctx.quality)
    cols = [f"V{i}" for i in range(1, 29)]
    x = np.concatenate(
        [
            df[cols].to_numpy(np.float32),
            np.log1p(df[["Amount"]].to_numpy(np.float32)),
            ((df[["Time"]].to_numpy(np.float32) // 3600) % 24),
        ],
        axis=1,
    )
    y = df["Class"].to_numpy(np.int64)
    cut = int(0.8 * len(y))
    lr = Logistic.fit(x[:cut], y[:cut], seed=ctx.seed, C=0.1)
    gbm = fit_gbm(x[:cut], y[:cut], ctx.seed, legit_share=0.3)
    with single_thread():
        p_gbm = gbm.predict_proba(x[cut:])[:, 1]
    rep = {
        "rows": int(len(y)),
        "frauds": int(y.sum()),
        "test_rows": int(len(y) - cut),
        "test_frauds": int(y[cut:].sum()),
        "split": "chronological: first 80% by Time train, last 20% test",
        "models": {
            "logistic": evaluate(y[cut:], lr.predict(x[cut:]), ctx.seed, n_boot),
            "gbm": evaluate(y[cut:], p_gbm, ctx.seed, n_boot),
        },
    }
    rep["seconds"] = round(time.time() - t0, 1)
    return rep
