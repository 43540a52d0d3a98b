"""The forecast training job: one set of forecasters per bar interval, each served only at it.

A forecaster answers "the next bar's log return, mean and sd" for the bar interval it was trained
on; served on another interval its volatility is off by sqrt(ratio) (the issue-11 finding: a
daily model on half-hourly quotes, bands 5.8x too wide). So each frequency gets its own data,
its own ``Standardiser``, its own models and its own chronological hold-out, where every exported
model is compared with EWMA(0.94) and GARCH(1,1) on QLIKE and 95% band coverage; the winner
(``forecast_eval.choose_default``) is the default of the slot ``forecast@<interval>``. The
card says the interval (``extra.bar_s``); the worker refuses to serve it at another one.

Frequencies: ``1d`` (daily closes of eleven instruments, ``training.data.market.load_prices``)
and ``1h`` (hourly EUR/USD from PyPI ``backtesting``). The legacy slot ``forecast`` keeps the
daily default. Model code (one ``Forecaster`` interface: fit, predict, export, card):
``training.forecast_models`` (AR), ``training.forecast_keras`` (Conv1D, LSTM) and
``training.forecast_classic`` (EWMA, GARCH); metrics: ``training.forecast_eval``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from stream.core.bars import forecast_slot, interval_name
from stream.core.manifest import ModelCard
from training.data.market import MarketData, load_hourly_prices, prepare
from training.export import data_fingerprint, reference_distribution
from training.forecast_classic import EWMAFilter, GARCHFilter
from training.forecast_eval import (  # noqa: F401
    _rmse,
    baselines,
    block_indices,
    calibrate_band_z,
    choose_default,
    diebold_mariano,
    evaluate,
    qlike,
)
from training.forecast_keras import (  # noqa: F401
    KERAS_FIT,
    Conv1DForecaster,
    LSTMForecaster,
    export_forecaster_keras,
    keras_predict,
    train_keras,
)
from training.forecast_models import (  # noqa: F401
    INPUT_FEATURE,
    ARModel,
    Forecaster,
    export_ar,
    fit_ar,
    input_spec,
    onnx_predict,
    output_spec,
)
from training.job import JobResult, TrainContext

FREQUENCIES = {86400: "daily", 3600: "hourly"}
MODELS: dict[str, type[Forecaster]] = {
    "forecast_ar": ARModel,
    "forecast_conv1d": Conv1DForecaster,
    "forecast_lstm": LSTMForecaster,
    "forecast_ewma": EWMAFilter,
    "forecast_garch": GARCHFilter,
}
FAMILIES = {name: cls.family for name, cls in MODELS.items()}
EXPORTED = tuple(MODELS)


def model_name(base: str, bar_s: int) -> str:
    """Daily models keep their historical names; other intervals carry a suffix (forecast_lstm_1h)."""
    return base if bar_s == 86400 else f"{base}_{interval_name(bar_s)}"


def load_data(ctx: TrainContext, bar_s: int) -> MarketData:
    if bar_s == 86400:
        return prepare(ctx.cache_dir, ctx.quality)
    if bar_s == 3600:
        return prepare(ctx.cache_dir, ctx.quality, prices=load_hourly_prices(ctx.cache_dir, ctx.quality))
    raise ValueError(f"no training data for {interval_name(bar_s)} bars")


def _fit_one(step: str, data: MarketData, path: Path, ctx: TrainContext, keras_fit) -> tuple[Forecaster, dict]:
    """Fit and export one model; returns (the fitted model, fit info for the report)."""
    cls = MODELS[step]
    params = {}
    if cls.family in KERAS_FIT:
        epochs, lr = (keras_fit or KERAS_FIT)[cls.family]
        params = {"epochs": epochs, "lr": lr}
    model = cls.fit(data, seed=ctx.seed, **params)
    model.export(path)
    info = dict(model.info)
    if params:
        info.update(max_epochs=params["epochs"], learning_rate=params["lr"])
    return model, info


def train_frequency(ctx: TrainContext, bar_s: int, keras_fit=None) -> tuple[list[ModelCard], str, dict]:
    """Every exported model and baseline of one bar interval on its own hold-out: (cards, served
    model name, report figures)."""
    t_start = time.perf_counter()
    data = load_data(ctx, bar_s)
    Xtr, ytr = data.pooled("train")
    Xva, yva = data.pooled("val")
    Xte, yte = data.pooled("test")
    groups = data.groups("test")
    out_dir = Path(ctx.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    preds, val_preds, fit_info, parity, paths, models = {}, {}, {}, {}, {}, {}
    iv = interval_name(bar_s)
    for step in ctx.progress([*EXPORTED, "baselines"], desc=f"forecast {iv}"):
        t0 = time.perf_counter()
        if step == "baselines":
            base, fit_info["baselines"] = baselines(data, "test")
            preds.update(base)
        else:
            paths[step] = out_dir / f"{model_name(step, bar_s)}.onnx"
            models[step], fit_info[step] = _fit_one(step, data, paths[step], ctx, keras_fit)
            val_preds[step] = models[step].predict(Xva)
            preds[step] = onnx_predict(paths[step], Xte)  # the served numbers
            parity[step] = float(np.max(np.abs(preds[step] - models[step].predict(Xte))))
            if parity[step] > 1e-5 * max(1.0, float(np.max(np.abs(preds[step])))) and parity[step] > 1e-6:
                raise RuntimeError(f"{step} ({iv}): framework and onnxruntime disagree by {parity[step]:.2e}")
        fit_info.setdefault(step, {})["seconds"] = round(time.perf_counter() - t0, 1)

    band_z = {name: calibrate_band_z(p[:, 0], p[:, 1], yva) for name, p in val_preds.items()}
    metrics = evaluate(preds, yte, groups, seed=ctx.seed, band_z=band_z)
    default, why = choose_default(metrics, EXPORTED)
    per_instrument = {
        inst.symbol: {
            name: {
                "r2_oos": float(1 - np.sum((p[m, 0] - yte[m]) ** 2) / np.sum(yte[m] ** 2))
                if not np.isnan(p[m, 0]).all()
                else None,
                "qlike": qlike(p[m, 1], yte[m]) if not np.isnan(p[m, 1]).all() else None,
            }
            for name, p in preds.items()
        }
        for k, inst in enumerate(data.instruments)
        for m in [groups == k]
    }
    validation = {
        name: {
            "return_rmse": _rmse(p[:, 0], yva),
            "r2_oos": float(1 - np.sum((p[:, 0] - yva) ** 2) / np.sum(yva**2)),
            "qlike": qlike(p[:, 1], yva),
        }
        for name, p in val_preds.items()
    }
    validation["zero_return"] = {"return_rmse": _rmse(0.0, yva), "r2_oos": 0.0}
    fingerprint = data_fingerprint(Xtr, ytr)
    ref = reference_distribution(Xtr[:, -1, :], [INPUT_FEATURE])
    word = FREQUENCIES.get(bar_s, iv)
    cards = [
        models[name].card(
            paths[name],
            model_name(name, bar_s),
            normalisation={"returns": data.norm.to_dict()},
            reference_distribution=ref,
            metrics=metrics[name],
            data_fingerprint=fingerprint,
            feature_labels={INPUT_FEATURE: f"standardised {word} log return"},
            extra={
                "window": data.window,
                "bar_s": bar_s,
                "bar_interval": iv,
                "horizon_s": bar_s,
                "horizon": 1,
                "band_z": band_z[name],  # band_95 = mean +- band_z * sd, fitted on the validation split
                "volatility": "sd of the next bar's log return",
                "instruments": [i.symbol for i in data.instruments],
                "fit": {k: v for k, v in fit_info[name].items() if k not in ("val_rmse_by_p", "val_qlike_by_q")},
                "onnx_max_abs_diff": parity[name],
            },
        )
        for name in EXPORTED
    ]
    split = {
        i.symbol: {
            "train": [str(i.dates[0])[:19], str(i.dates[i.n_train - 1])[:19]],
            "val": [str(i.dates[i.n_train])[:19], str(i.dates[i.n_val - 1])[:19]],
            "test": [str(i.dates[i.n_val])[:19], str(i.dates[-1])[:19]],
            "rows": [i.n_train, i.n_val - i.n_train, len(i.y) - i.n_val],
        }
        for i in data.instruments
    }
    report = {
        "bar_s": bar_s,
        "bar_interval": iv,
        "default": default,
        "served_model": model_name(default, bar_s),
        "default_rule": why,
        "window": data.window,
        "normalisation": data.norm.to_dict(),
        "rows": {"train": int(len(ytr)), "val": int(len(yva)), "test": int(len(yte))},
        "split": split,
        "holdout": metrics,
        "validation": validation,
        "per_instrument": per_instrument,
        "fit": fit_info,
        "onnx_parity_max_abs_diff": parity,
        "bootstrap": {"kind": "moving block, within instrument", "block": 20, "reps": 1000},
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return cards, model_name(default, bar_s), report


def train(
    ctx: TrainContext, *, keras_fit: dict[str, tuple[int, float]] | None = None, frequencies=tuple(FREQUENCIES)
) -> JobResult:
    from training.forecast_report import forecast_section

    t0 = time.perf_counter()
    cards: list[ModelCard] = []
    defaults: dict[str, str] = {}
    reports: dict[str, dict] = {}
    for bar_s in frequencies:
        c, served, rep = train_frequency(ctx, bar_s, keras_fit)
        cards += c
        defaults[forecast_slot(bar_s)] = served
        reports[interval_name(bar_s)] = rep
    if 86400 in frequencies:
        defaults["forecast"] = defaults[forecast_slot(86400)]  # the legacy slot: daily
    report = {
        "task": "forecast",
        "defaults": defaults,
        "frequencies": reports,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return JobResult(cards=cards, defaults=defaults, report_md=forecast_section(report), report=report)
