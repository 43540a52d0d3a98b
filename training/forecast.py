"""Next-step return and volatility forecasters on real daily prices, exported to ONNX.

Every exported forecaster has the same interface, which is what the stream feeds it:

* input ``window``  [None, W, 1] float32: ``forecast_input(prices, norm)``, i.e. the last W log
  returns standardised with the ONE pooled ``Standardiser`` stored in the manifest and clipped
  at +-``RETURN_CLIP``;
* output ``forecast`` [None, 2] float32: ``[next_return, next_volatility]`` in raw log-return
  units; ``next_volatility`` is the conditional *standard deviation* of the next log return.

Models
------
``forecast_ar``      least squares on the lags: AR(p) for the mean, and a linear model on the
                     absolute standardised lags for E|r| (an ARCH-type model in absolute values),
                     turned into a standard deviation with sqrt(pi/2) (exact for a Gaussian);
                     p and q chosen on the validation split. A plain ONNX graph (Reshape, MatMul,
                     Abs, Max, Concat); no framework at serve time.
``forecast_conv1d``  two causal Conv1D layers + a small dense layer;
``forecast_lstm``    one LSTM(16) layer.
The Keras models predict (mean, sd) and are trained with the Gaussian negative log-likelihood,
whose volatility part is QLIKE-consistent: its expected value is minimised by the true
conditional variance.

Targets used for *fitting* are the raw next log return winsorised at the same +-RETURN_CLIP
standardised bound as the inputs; every metric is computed on the raw, unclipped returns.

Baselines (report only, not exported): zero return (random walk), the training-mean return,
statsmodels ARIMA(1,0,1) per instrument, EWMA RiskMetrics (lambda 0.94), GARCH(1,1) (``arch``)
per instrument with parameters fitted on the training part, and the rolling 32-day sd.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.core.features import FORECAST_WINDOW, Standardiser
from stream.core.manifest import ModelCard, TensorSpec
from training.data.market import MarketData, prepare
from training.export import (OPSET, data_fingerprint, export_keras, make_card, onnx_run, reference_distribution,
                             save_graph)
from training.job import JobResult, TrainContext

SQRT_PI_2 = math.sqrt(math.pi / 2)     # sd = sqrt(pi/2) * E|r| for a zero-mean Gaussian
EWMA_LAMBDA = 0.94
BLOCK = 20                             # block length (trading days) of the moving-block bootstrap
N_BOOT = 1000
# (max epochs, Adam learning rate); early stopping (patience 5) on the validation NLL decides
KERAS_FIT = {"conv1d": (40, 1e-3), "lstm": (80, 3e-3)}
EXPORTED = ("forecast_ar", "forecast_conv1d", "forecast_lstm")
INPUT_FEATURE = "log_return_std"
OUTPUT_MEANING = ["next_return", "next_volatility"]


def input_spec(window: int = FORECAST_WINDOW) -> TensorSpec:
    return TensorSpec("window", [None, window, 1], "float32", features=[INPUT_FEATURE])


def output_spec() -> TensorSpec:
    return TensorSpec("forecast", [None, 2], "float32", meaning=list(OUTPUT_MEANING))


def clip_target(y: np.ndarray, norm: Standardiser) -> np.ndarray:
    """The fitting target: raw returns winsorised at the inputs' standardised clip."""
    lo, hi = norm.mean - norm.clip * norm.std, norm.mean + norm.clip * norm.std
    return np.clip(y, lo, hi)


# =========================================================================== AR (linear)

@dataclass
class ARModel:
    w_ret: np.ndarray        # (W,) weights on the standardised lags (oldest first)
    b_ret: float
    w_abs: np.ndarray        # (W,) weights on |lags|, already in sd units (x sqrt(pi/2))
    b_abs: float
    floor: float             # minimum sd
    p: int
    q: int

    def predict(self, X: np.ndarray) -> np.ndarray:
        x = X.reshape(len(X), -1).astype(np.float64)
        ret = x @ self.w_ret + self.b_ret
        sd = np.maximum(np.abs(x) @ self.w_abs + self.b_abs, self.floor)
        return np.stack([ret, sd], axis=1)


def _lstsq_last(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """OLS of y on an intercept and the last k columns of x; weights padded to x's width."""
    A = np.column_stack([np.ones(len(x)), x[:, -k:]])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    w = np.zeros(x.shape[1])
    w[-k:] = coef[1:]
    return w, float(coef[0])


def fit_ar(data: MarketData, orders=(1, 2, 3, 5, 10, 20, 32)) -> tuple[ARModel, dict]:
    Xtr, ytr = data.pooled("train")
    Xva, yva = data.pooled("val")
    xtr, xva = Xtr.reshape(len(Xtr), -1).astype(np.float64), Xva.reshape(len(Xva), -1).astype(np.float64)
    yc = clip_target(ytr, data.norm)
    floor = 0.1 * data.norm.std
    sel: dict[str, dict[int, float]] = {"p": {}, "q": {}}
    for p in orders:
        w, b = _lstsq_last(xtr, yc, p)
        sel["p"][p] = _rmse(xva @ w + b, yva)
    best_p = min(orders, key=sel["p"].__getitem__)
    w_ret, b_ret = _lstsq_last(xtr, yc, best_p)
    atr, ava = np.abs(xtr), np.abs(xva)

    def vol_fit(q):
        w, b = _lstsq_last(atr, np.abs(yc), q)
        return w * SQRT_PI_2, b * SQRT_PI_2

    for q in orders:
        w, b = vol_fit(q)
        sel["q"][q] = qlike(np.maximum(ava @ w + b, floor), yva)
    best_q = min(orders, key=sel["q"].__getitem__)
    w_abs, b_abs = vol_fit(best_q)
    model = ARModel(w_ret, b_ret, w_abs, b_abs, floor, best_p, best_q)
    return model, {"p": best_p, "q": best_q, "val_rmse_by_p": sel["p"], "val_qlike_by_q": sel["q"]}


def export_ar(model: ARModel, path: Path, window: int = FORECAST_WINDOW, opset: int = OPSET) -> Path:
    """``window`` [N,W,1] -> Reshape [N,W] -> [x@w_ret+b, max(|x|@w_abs+b, floor)] -> ``forecast`` [N,2]."""
    from onnx import TensorProto, helper, numpy_helper

    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    inits = [
        numpy_helper.from_array(np.array([-1, window], dtype=np.int64), "shape"),
        numpy_helper.from_array(f32(model.w_ret).reshape(window, 1), "W_ret"),
        numpy_helper.from_array(f32([model.b_ret]), "B_ret"),
        numpy_helper.from_array(f32(model.w_abs).reshape(window, 1), "W_abs"),
        numpy_helper.from_array(f32([model.b_abs]), "B_abs"),
        numpy_helper.from_array(f32([model.floor]), "floor"),
    ]
    nodes = [
        helper.make_node("Reshape", ["window", "shape"], ["x"]),
        helper.make_node("MatMul", ["x", "W_ret"], ["xw"]),
        helper.make_node("Add", ["xw", "B_ret"], ["ret"]),
        helper.make_node("Abs", ["x"], ["ax"]),
        helper.make_node("MatMul", ["ax", "W_abs"], ["aw"]),
        helper.make_node("Add", ["aw", "B_abs"], ["sd_lin"]),
        helper.make_node("Max", ["sd_lin", "floor"], ["sd"]),
        helper.make_node("Concat", ["ret", "sd"], ["forecast"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "forecast_ar",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, window, 1])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, [None, 2])],
        inits,
    )
    return save_graph(graph, path, opset)


# =========================================================================== Keras

def _keras_setup(seed: int):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:   # pragma: no cover - older TF
        pass
    return keras, tf


def build_keras(kind: str, norm: Standardiser, window: int = FORECAST_WINDOW, seed: int = 7, units: int = 16):
    """A model from ``window`` (N,W,1) standardised returns to ``forecast`` (N,2) raw (mean, sd)."""
    keras, _ = _keras_setup(seed)
    from keras import layers, ops

    mean, std = float(norm.mean), float(norm.std)

    @keras.saving.register_keras_serializable(package="finstream")
    class RawUnits(layers.Layer):
        """(mu_z, s_raw) in standardised units -> [mu_z*std + mean, (softplus(s_raw) + 1e-3)*std]."""

        def call(self, x):
            mu = x[:, :1] * std + mean
            sd = (ops.softplus(x[:, 1:2]) + 1e-3) * std
            return ops.concatenate([mu, sd], axis=1)

    inp = keras.Input((window, 1), name="window")
    if kind == "conv1d":
        x = layers.Conv1D(units, 5, padding="causal", activation="relu")(inp)
        x = layers.Conv1D(units, 5, padding="causal", dilation_rate=2, activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(16, activation="relu")(x)
    elif kind == "lstm":
        x = layers.LSTM(units)(inp)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    head = layers.Dense(2, bias_initializer=keras.initializers.Constant([0.0, math.log(math.e - 1)]))(x)
    out = RawUnits(name="forecast")(head)
    return keras.Model(inp, out, name=f"forecast_{kind}")


def gaussian_nll(y_true, y_pred):
    from keras import ops

    y = ops.reshape(y_true, (-1,))
    mu, sd = y_pred[:, 0], y_pred[:, 1]
    return ops.mean(ops.log(sd) + 0.5 * ops.square((y - mu) / sd))


def train_keras(kind: str, data: MarketData, *, seed: int = 7, epochs: int = 40, patience: int = 5,
                batch_size: int = 256, max_rows: int | None = None, units: int = 16, lr: float = 1e-3):
    """Fit on the pooled training split with early stopping on the validation split."""
    keras, _ = _keras_setup(seed)
    model = build_keras(kind, data.norm, data.window, seed=seed, units=units)
    Xtr, ytr = data.pooled("train")
    Xva, yva = data.pooled("val")
    if max_rows:
        Xtr, ytr, Xva, yva = Xtr[-max_rows:], ytr[-max_rows:], Xva[-max_rows:], yva[-max_rows:]
    ytr_c = clip_target(ytr, data.norm).astype(np.float32)
    yva_c = clip_target(yva, data.norm).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=gaussian_nll)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    t0 = time.perf_counter()
    hist = model.fit(Xtr, ytr_c, validation_data=(Xva, yva_c), epochs=epochs, batch_size=batch_size,
                     shuffle=True, callbacks=[stop], verbose=0)
    info = {"epochs_run": len(hist.history["loss"]),
            "best_epoch": int(np.argmin(hist.history["val_loss"])) + 1,
            "best_val_nll": float(np.min(hist.history["val_loss"])),
            "params": int(model.count_params()),
            "fit_seconds": round(time.perf_counter() - t0, 1)}
    return model, info


def keras_predict(model, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(X, batch_size=4096, verbose=0), dtype=np.float64)


def export_forecaster_keras(model, path: Path, window: int = FORECAST_WINDOW) -> Path:
    return export_keras(model, path, [input_spec(window)], output_names=("forecast",))


def onnx_predict(path: Path, X: np.ndarray) -> np.ndarray:
    return np.asarray(onnx_run(path, {"window": X.astype(np.float32)})[0], dtype=np.float64)


# =========================================================================== baselines

def _ewma_var(r: np.ndarray, lam: float = EWMA_LAMBDA, init_n: int = 32) -> np.ndarray:
    """sigma2[j] = forecast of r[j]'s variance from r[:j] (RiskMetrics recursion)."""
    s2 = np.empty(len(r))
    s2[0] = np.mean(r[:init_n] ** 2)
    for j in range(1, len(r)):
        s2[j] = lam * s2[j - 1] + (1 - lam) * r[j - 1] ** 2
    return s2


def _garch(r: np.ndarray, train_end: int, start: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """GARCH(1,1) with constant mean on 100*r, fitted on r[:train_end]; one-step forecasts for r[start:]."""
    from arch import arch_model

    am = arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    res = am.fit(last_obs=train_end, disp="off", show_warning=False)
    fc = res.forecast(horizon=1, start=start - 1, reindex=False)
    mean = fc.mean.to_numpy()[:, 0] / 100
    var = fc.variance.to_numpy()[:, 0] / 1e4
    n = len(r) - start
    return mean[:n], np.sqrt(var[:n]), {k: float(v) for k, v in res.params.items()}


def _arima(r: np.ndarray, train_end: int, start: int) -> np.ndarray:
    """ARIMA(1,0,1) on 100*r fitted on r[:train_end]; one-step predictions (fixed parameters) for r[start:]."""
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ARIMA(100 * r[:train_end], order=(1, 0, 1)).fit()
        full = res.apply(100 * r)
        pred = np.asarray(full.predict(start=start, end=len(r) - 1)) / 100
    return pred


def baselines(data: MarketData, which: str = "test", progress=None) -> tuple[dict[str, np.ndarray], dict]:
    """Hold-out forecasts ([ret, sd] per row, NaN where a baseline gives no part) of every baseline."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("zero_return", "train_mean", "arima_1_0_1",
                                                          "ewma_0.94", "garch_1_1", "rolling_sd_32")}
    info = {"garch_params": {}}
    insts = data.instruments if progress is None else progress(data.instruments, desc="baselines")
    for inst in insts:
        sl = inst.part(which)
        n = sl.stop - sl.start
        off = inst.target_offset
        start = off + sl.start                           # index in returns of the first hold-out target
        train_end = off + inst.n_train                   # returns used for fitting: r[:train_end]
        r = inst.returns
        nan = np.full(n, np.nan)
        parts["zero_return"].append(np.stack([np.zeros(n), nan], 1))
        parts["train_mean"].append(np.stack([np.full(n, data.norm.mean), nan], 1))
        parts["arima_1_0_1"].append(np.stack([_arima(r, train_end, start), nan], 1))
        s2 = _ewma_var(r)[start:]
        parts["ewma_0.94"].append(np.stack([nan, np.sqrt(s2)], 1))
        gm, gsd, gp = _garch(r, train_end, start)
        info["garch_params"][inst.symbol] = gp
        parts["garch_1_1"].append(np.stack([gm, gsd], 1))
        roll = np.array([r[j - FORECAST_WINDOW:j].std() for j in range(start, len(r))])
        parts["rolling_sd_32"].append(np.stack([nan, roll], 1))
    return {k: np.concatenate(v) for k, v in parts.items()}, info


# =========================================================================== metrics

def _rmse(pred, y) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(y)) ** 2)))


def qlike(sd: np.ndarray, y: np.ndarray) -> float:
    """QLIKE = mean(log sigma^2 + r^2 / sigma^2) (Patton 2011, up to a constant in r; defined at r = 0)."""
    s2 = np.asarray(sd, dtype=np.float64) ** 2
    return float(np.mean(np.log(s2) + np.asarray(y) ** 2 / s2))


def block_indices(groups: np.ndarray, n_boot: int = N_BOOT, block: int = BLOCK, seed: int = 7) -> np.ndarray:
    """Moving-block bootstrap indices that keep blocks inside one instrument, stratified by instrument:
    each instrument contributes as many rows as it has. (n_boot, n) int array."""
    rng = np.random.default_rng(seed)
    out = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        n = len(idx)
        nb = math.ceil(n / block)
        starts = rng.integers(0, max(n - block, 0) + 1, size=(n_boot, nb))
        pos = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
        out.append(idx[np.minimum(pos, n - 1)])
    return np.concatenate(out, axis=1)


def _ci(samples: np.ndarray) -> list[float]:
    lo, hi = np.nanpercentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def diebold_mariano(d: np.ndarray) -> tuple[float, float]:
    """DM statistic and two-sided p-value for a loss differential d (Newey-West variance)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    dc = d - d.mean()
    lags = int(np.floor(n ** (1 / 3)))
    v = dc @ dc / n
    for k in range(1, lags + 1):
        v += 2 * (1 - k / (lags + 1)) * (dc[k:] @ dc[:-k]) / n
    stat = d.mean() / math.sqrt(v / n) if v > 0 else 0.0
    return float(stat), float(2 * stats.norm.sf(abs(stat)))


def evaluate(preds: dict[str, np.ndarray], y: np.ndarray, groups: np.ndarray, *, vol_ref: str = "ewma_0.94",
             seed: int = 7) -> dict[str, dict]:
    """Hold-out metrics with block-bootstrap 95% CIs; returns vs the zero forecast, vol vs ``vol_ref``."""
    idx = block_indices(groups, seed=seed)
    e0 = y ** 2
    out: dict[str, dict] = {}
    ref_q = None
    if vol_ref in preds:
        s2r = preds[vol_ref][:, 1] ** 2
        ref_q = np.log(s2r) + y ** 2 / s2r
    for name, p in preds.items():
        m: dict = {"n": int(len(y))}
        ret, sd = p[:, 0], p[:, 1]
        if not np.isnan(ret).all():
            e = (ret - y) ** 2
            m["return_rmse"] = float(np.sqrt(e.mean()))
            m["return_mae"] = float(np.mean(np.abs(ret - y)))
            m["return_rmse_ci"] = _ci(np.sqrt(e[idx].mean(axis=1)))
            m["r2_oos"] = float(1 - e.sum() / e0.sum())
            m["r2_oos_ci"] = _ci(1 - e[idx].sum(axis=1) / e0[idx].sum(axis=1))
            d_rmse = np.sqrt(e[idx].mean(axis=1)) - np.sqrt(e0[idx].mean(axis=1))
            m["rmse_minus_zero"] = float(m["return_rmse"] - np.sqrt(e0.mean()))
            m["rmse_minus_zero_ci"] = _ci(d_rmse)
            m["dm_vs_zero"], m["dm_vs_zero_p"] = diebold_mariano(e - e0) if name != "zero_return" else (0.0, 1.0)
            ok = (y != 0) & (ret != 0)
            if ok.any():
                hit = (np.sign(ret) == np.sign(y)).astype(float)
                hit[~ok] = np.nan
                m["directional_accuracy"] = float(np.nanmean(hit))
                m["directional_accuracy_ci"] = _ci(np.nanmean(hit[idx], axis=1))
            else:
                m["directional_accuracy"] = None
        if not np.isnan(sd).all():
            ea = sd / SQRT_PI_2
            m["vol_rmse_abs"] = _rmse(ea, np.abs(y))
            q = np.log(sd ** 2) + y ** 2 / sd ** 2
            m["qlike"] = float(q.mean())
            m["qlike_ci"] = _ci(q[idx].mean(axis=1))
            if ref_q is not None:
                m[f"qlike_minus_{vol_ref}"] = float(q.mean() - ref_q.mean())
                m[f"qlike_minus_{vol_ref}_ci"] = _ci((q - ref_q)[idx].mean(axis=1))
            m["mean_predicted_sd"] = float(sd.mean())
        out[name] = m
    return out


def choose_default(metrics: dict[str, dict], candidates=EXPORTED) -> tuple[str, str]:
    """The served default: among exported models whose return RMSE is not worse than the zero
    forecast beyond the 95% CI (CI of RMSE_model - RMSE_zero has lower bound <= 0), the lowest
    hold-out QLIKE. If none qualifies, the exported model with the lowest return RMSE."""
    ok = [c for c in candidates if c in metrics and metrics[c]["rmse_minus_zero_ci"][0] <= 0]
    if ok:
        best = min(ok, key=lambda c: metrics[c]["qlike"])
        return best, (f"lowest hold-out QLIKE ({metrics[best]['qlike']:.4f}) among exported models not "
                      f"significantly worse than the zero-return forecast on RMSE ({', '.join(ok)})")
    best = min((c for c in candidates if c in metrics), key=lambda c: metrics[c]["return_rmse"])
    return best, "no exported model passed the RMSE rule; fallback: lowest return RMSE"


# =========================================================================== the job

@dataclass
class ForecastOutputs:
    data: MarketData
    preds: dict[str, np.ndarray] = field(default_factory=dict)
    cards: list[ModelCard] = field(default_factory=list)


def _card(name: str, family: str, path: Path, data: MarketData, metrics: dict, extra: dict,
          fingerprint: str, ref: dict) -> ModelCard:
    return make_card(
        name, "forecast", family, path, [input_spec(data.window)], [output_spec()],
        normalisation={"returns": data.norm.to_dict()},
        reference_distribution=ref,
        metrics=metrics,
        data_fingerprint=fingerprint,
        feature_labels={INPUT_FEATURE: "standardised daily log return"},
        extra={"window": data.window, "horizon": 1, "volatility": "sd of the next log return",
               "instruments": [i.symbol for i in data.instruments], **extra},
    )


def train(ctx: TrainContext, *, keras_fit: dict[str, tuple[int, float]] | None = None) -> JobResult:
    from training.report import forecast_section

    t_start = time.perf_counter()
    progress = ctx.progress
    data = prepare(ctx.cache_dir, ctx.quality)
    Xtr, ytr = data.pooled("train")
    Xva, yva = data.pooled("val")
    Xte, yte = data.pooled("test")
    groups = data.groups("test")
    val_preds: dict[str, np.ndarray] = {}
    fingerprint = data_fingerprint(Xtr, ytr)
    ref = reference_distribution(Xtr[:, -1, :], [INPUT_FEATURE])
    out_dir = Path(ctx.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    preds: dict[str, np.ndarray] = {}
    fit_info: dict[str, dict] = {}
    parity: dict[str, float] = {}
    paths: dict[str, Path] = {}
    steps = ["forecast_ar", "forecast_conv1d", "forecast_lstm", "baselines"]
    keras_models = {}
    for step in progress(steps, desc="forecast"):
        t0 = time.perf_counter()
        if step == "forecast_ar":
            ar, info = fit_ar(data)
            paths[step] = export_ar(ar, out_dir / f"{step}.onnx", data.window)
            preds[step] = ar.predict(Xte)
            val_preds[step] = ar.predict(Xva)
            onnx_p = onnx_predict(paths[step], Xte)
            parity[step] = float(np.max(np.abs(onnx_p - preds[step])))
            preds[step] = onnx_p                     # the served numbers
            fit_info[step] = info
        elif step in ("forecast_conv1d", "forecast_lstm"):
            kind = step.split("_", 1)[1]
            epochs, lr = (keras_fit or KERAS_FIT)[kind]
            model, info = train_keras(kind, data, seed=ctx.seed, epochs=epochs, lr=lr)
            info.update(max_epochs=epochs, learning_rate=lr)
            val_preds[step] = keras_predict(model, Xva)
            keras_models[step] = model
            paths[step] = export_forecaster_keras(model, out_dir / f"{step}.onnx", data.window)
            kp = keras_predict(model, Xte)
            onnx_p = onnx_predict(paths[step], Xte)
            parity[step] = float(np.max(np.abs(onnx_p - kp)))
            if parity[step] > 1e-5:
                raise RuntimeError(f"{step}: Keras and onnxruntime disagree by {parity[step]:.2e} on the hold-out")
            preds[step] = onnx_p
            fit_info[step] = info
        else:
            base, binfo = baselines(data, "test")
            preds.update(base)
            fit_info["baselines"] = binfo
        fit_info.setdefault(step, {})["seconds"] = round(time.perf_counter() - t0, 1)

    metrics = evaluate(preds, yte, groups, seed=ctx.seed)
    per_instrument = {}
    for k, inst in enumerate(data.instruments):
        m = groups == k
        per_instrument[inst.symbol] = {
            name: {"r2_oos": float(1 - np.sum((p[m, 0] - yte[m]) ** 2) / np.sum(yte[m] ** 2))
                   if not np.isnan(p[m, 0]).all() else None,
                   "qlike": qlike(p[m, 1], yte[m]) if not np.isnan(p[m, 1]).all() else None}
            for name, p in preds.items()}
    default, why = choose_default(metrics)
    validation = {name: {"return_rmse": _rmse(p[:, 0], yva),
                         "r2_oos": float(1 - np.sum((p[:, 0] - yva) ** 2) / np.sum(yva ** 2)),
                         "qlike": qlike(p[:, 1], yva)}
                  for name, p in val_preds.items()}
    validation["zero_return"] = {"return_rmse": _rmse(0.0, yva), "r2_oos": 0.0}

    families = {"forecast_ar": "ar", "forecast_conv1d": "conv1d", "forecast_lstm": "lstm"}
    cards = [
        _card(name, families[name], paths[name], data, metrics[name],
              {"fit": {k: v for k, v in fit_info[name].items() if k not in ("val_rmse_by_p", "val_qlike_by_q")},
               "onnx_max_abs_diff": parity[name]},
              fingerprint, ref)
        for name in EXPORTED
    ]
    split = {i.symbol: {"train": [str(i.dates[0])[:10], str(i.dates[i.n_train - 1])[:10]],
                        "val": [str(i.dates[i.n_train])[:10], str(i.dates[i.n_val - 1])[:10]],
                        "test": [str(i.dates[i.n_val])[:10], str(i.dates[-1])[:10]],
                        "rows": [i.n_train, i.n_val - i.n_train, len(i.y) - i.n_val]}
             for i in data.instruments}
    report = {
        "task": "forecast",
        "default": default,
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
        "bootstrap": {"kind": "moving block, within instrument", "block": BLOCK, "reps": N_BOOT},
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    return JobResult(cards=cards, defaults={"forecast": default}, report_md=forecast_section(report), report=report)
