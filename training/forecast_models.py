"""The exported forecasters: one interface (``Forecaster``), fitted per bar interval, exported to ONNX.

Every exported forecaster has the same interface, which is what the stream feeds it:

* input ``window``  [None, W, 1] float32: ``forecast_input(prices, norm)``, i.e. the last W log
  returns between bar closes, standardised with the ONE pooled ``Standardiser`` of its interval
  (stored in the manifest) and clipped at +-``RETURN_CLIP``;
* output ``forecast`` [None, 2] float32: ``[next_return, next_volatility]`` in raw log-return
  units over the next bar; ``next_volatility`` is the conditional *standard deviation*.

Models
------
``forecast_ar``      least squares on the lags: AR(p) for the mean, and a linear model on the
                     absolute standardised lags for E|r| (an ARCH-type model in absolute values),
                     turned into a standard deviation with sqrt(pi/2) (exact for a Gaussian);
                     p and q chosen on the validation split. A plain ONNX graph.
``forecast_conv1d``  two causal Conv1D layers + a small dense layer (``training.forecast_keras``);
``forecast_lstm``    one LSTM(16) layer (``training.forecast_keras``);
``forecast_ewma``, ``forecast_garch``: the classical volatility models as graphs
                     (``training.forecast_classic``), so whichever family wins can be served.
The Keras models predict (mean, sd) and are trained with the Gaussian negative log-likelihood,
whose volatility part is QLIKE-consistent: its expected value is minimised by the true
conditional variance. Fitting targets are winsorised at the inputs' clip; metrics use raw returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.core.features import FORECAST_WINDOW, Standardiser
from stream.core.manifest import TensorSpec
from training.data.market import MarketData
from training.export import OPSET, onnx_run, save_graph
from training.forecast_eval import SQRT_PI_2, _rmse, qlike
from training.models.base import Example, TrainableModel, register
from training.models.examples import market

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


class Forecaster(TrainableModel):
    """What every forecaster shares: fitted on a ``MarketData`` (``fit(data, seed=...)``), fed
    ``window`` [N, W, 1], answering ``forecast`` [N, 2]; ``info`` holds the fit's figures."""

    task = "forecast"
    window: int
    info: dict

    def inputs(self) -> list[TensorSpec]:
        return [input_spec(self.window)]

    def outputs(self) -> list[TensorSpec]:
        return [output_spec()]

    @classmethod
    def example(cls, seed: int) -> Example:
        data = market(seed)
        return Example((data,), data.pooled("test")[0])


# =========================================================================== AR (linear)


@register
@dataclass
class ARModel(Forecaster):
    family = "ar"

    w_ret: np.ndarray  # (W,) weights on the standardised lags (oldest first)
    b_ret: float
    w_abs: np.ndarray  # (W,) weights on |lags|, already in sd units (x sqrt(pi/2))
    b_abs: float
    floor: float  # minimum sd
    p: int
    q: int
    window: int = FORECAST_WINDOW
    info: dict = field(default_factory=dict, compare=False)

    @classmethod
    def fit(cls, x: MarketData, y=None, seed: int = 7, orders=(1, 2, 3, 5, 10, 20, 32)) -> ARModel:
        """p (mean) and q (volatility) chosen on the validation split; closed form, ``seed`` unused."""
        return fit_ar(x, orders)[0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        x = X.reshape(len(X), -1).astype(np.float64)
        ret = x @ self.w_ret + self.b_ret
        sd = np.maximum(np.abs(x) @ self.w_abs + self.b_abs, self.floor)
        return np.stack([ret, sd], axis=1)

    def export(self, path: Path) -> Path:
        return export_ar(self, path, self.window)


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
    info = {"p": best_p, "q": best_q, "val_rmse_by_p": sel["p"], "val_qlike_by_q": sel["q"]}
    return ARModel(w_ret, b_ret, w_abs, b_abs, floor, best_p, best_q, data.window, info), info


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
        nodes,
        "forecast_ar",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, window, 1])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, [None, 2])],
        inits,
    )
    return save_graph(graph, path, opset)


def onnx_predict(path: Path, X: np.ndarray) -> np.ndarray:
    return np.asarray(onnx_run(path, {"window": X.astype(np.float32)})[0], dtype=np.float64)
