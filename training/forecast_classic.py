"""The classical volatility models as servable forecasters: EWMA(0.94) and GARCH(1,1) over the window.

The stream serves ONNX graphs on a window of the last W returns, so the report's winner can only
be served if it is such a graph. These two are the baselines' recursions unrolled over the window
(GARCH's tail beyond W lags replaced by its unconditional variance); the report also shows the
full recursions (``forecast_eval.baselines``), so the truncation's cost is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.core.features import FORECAST_WINDOW, Standardiser
from training.data.market import MarketData
from training.export import OPSET, save_graph
from training.forecast_eval import EWMA_LAMBDA
from training.forecast_models import Forecaster
from training.models.base import register


@dataclass
class VarianceFilter(Forecaster):
    """A classical volatility model over the window: mean ``mu``, variance ``c + w . (r - mu)^2``
    with ``r`` the window's raw returns (oldest first), recovered from the standardised input."""

    mu: float
    c: float
    w: np.ndarray
    norm: Standardiser
    params: dict

    @property
    def window(self) -> int:  # type: ignore[override]
        return len(self.w)

    @property
    def info(self) -> dict:  # type: ignore[override]
        return {"params": self.params}

    def export(self, path: Path) -> Path:
        return export_filter(self, path, self.window)

    def predict(self, X: np.ndarray) -> np.ndarray:
        r = X.reshape(len(X), -1).astype(np.float64) * self.norm.std + self.norm.mean
        s2 = self.c + ((r - self.mu) ** 2) @ self.w
        return np.stack([np.full(len(r), self.mu), np.sqrt(s2)], axis=1)


@register
class EWMAFilter(VarianceFilter):
    family = "ewma"

    @classmethod
    def fit(cls, x: MarketData, y=None, seed: int = 7, lam: float = EWMA_LAMBDA) -> EWMAFilter:
        """Nothing is estimated: RiskMetrics' lambda on the data's window and standardiser."""
        return ewma_filter(x.norm, x.window, lam)


@register
class GARCHFilter(VarianceFilter):
    family = "garch"

    @classmethod
    def fit(cls, x: MarketData, y=None, seed: int = 7) -> GARCHFilter:
        return fit_garch_filter(x)


def ewma_filter(norm: Standardiser, window: int = FORECAST_WINDOW, lam: float = EWMA_LAMBDA) -> EWMAFilter:
    """RiskMetrics weights (1-lam) lam^k on lag k, renormalised to sum to 1 over the window."""
    w = (1 - lam) * lam ** np.arange(window)[::-1]
    return EWMAFilter(0.0, 0.0, w / w.sum(), norm, {"lambda": lam})


def fit_garch_filter(data: MarketData) -> GARCHFilter:
    """GARCH(1,1) fitted (``arch``) on the pooled training returns, unrolled over the window:
    sigma2 = omega (1-beta^W)/(1-beta) + alpha sum_k beta^k eps_{t-k}^2 + beta^W * unconditional."""
    from arch import arch_model

    r = np.concatenate([i.returns[: i.target_offset + i.n_train] for i in data.instruments])
    res = arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(
        disp="off", show_warning=False
    )
    p = {k: float(v) for k, v in res.params.items()}
    mu, omega, alpha, beta = p["mu"] / 100, p["omega"] / 1e4, p["alpha[1]"], p["beta[1]"]
    W = data.window
    uncond = omega / max(1.0 - alpha - beta, 1e-6)
    w = alpha * beta ** np.arange(W)[::-1]
    c = omega * (1 - beta**W) / (1 - beta) + beta**W * uncond
    return GARCHFilter(mu, float(c), w, data.norm, p)


def export_filter(model: VarianceFilter, path: Path, window: int = FORECAST_WINDOW, opset: int = OPSET) -> Path:
    """``window`` [N,W,1] -> raw returns -> [mu, sqrt(c + ((r-mu)^2) @ w)] -> ``forecast`` [N,2]."""
    from onnx import TensorProto, helper, numpy_helper

    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    inits = [
        numpy_helper.from_array(np.array([-1, window], dtype=np.int64), "shape"),
        numpy_helper.from_array(f32([model.norm.std]), "std"),
        numpy_helper.from_array(f32([model.norm.mean - model.mu]), "shift"),
        numpy_helper.from_array(f32(model.w).reshape(window, 1), "W"),
        numpy_helper.from_array(f32([model.c]), "C"),
        numpy_helper.from_array(f32([0.0]), "zero"),
        numpy_helper.from_array(f32([model.mu]), "MU"),
    ]
    nodes = [
        helper.make_node("Reshape", ["window", "shape"], ["z"]),
        helper.make_node("Mul", ["z", "std"], ["zs"]),
        helper.make_node("Add", ["zs", "shift"], ["eps"]),
        helper.make_node("Mul", ["eps", "eps"], ["eps2"]),
        helper.make_node("MatMul", ["eps2", "W"], ["we"]),
        helper.make_node("Add", ["we", "C"], ["s2"]),
        helper.make_node("Sqrt", ["s2"], ["sd"]),
        helper.make_node("Mul", ["sd", "zero"], ["z0"]),
        helper.make_node("Add", ["z0", "MU"], ["ret"]),
        helper.make_node("Concat", ["ret", "sd"], ["forecast"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, window, 1])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, [None, 2])],
        inits,
    )
    return save_graph(graph, path, opset)
