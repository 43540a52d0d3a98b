"""Hold-out evaluation of the forecasters: baselines, QLIKE, band coverage, bootstrap CIs, the served pick.

Baselines (report only): zero return (random walk), the training-mean return, statsmodels
ARIMA(1,0,1) per instrument, EWMA RiskMetrics (lambda 0.94) and GARCH(1,1) (``arch``) per
instrument with parameters fitted on the training part (full recursions), and the rolling
32-bar sd.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from stream.core.features import FORECAST_WINDOW
from training.data.market import MarketData

EWMA_LAMBDA = 0.94
BLOCK = 20  # block length (bars) of the moving-block bootstrap
N_BOOT = 1000
Z_95 = 1.96
SQRT_PI_2 = math.sqrt(math.pi / 2)  # sd = sqrt(pi/2) * E|r| for a zero-mean Gaussian
COVERAGE_OK = (0.93, 0.97)  # a served 95% band must cover this share of hold-out moves

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
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("zero_return", "train_mean", "arima_1_0_1", "ewma_0.94", "garch_1_1", "rolling_sd_32")
    }
    info = {"garch_params": {}}
    insts = data.instruments if progress is None else progress(data.instruments, desc="baselines")
    for inst in insts:
        sl = inst.part(which)
        n = sl.stop - sl.start
        off = inst.target_offset
        start = off + sl.start  # index in returns of the first hold-out target
        train_end = off + inst.n_train  # returns used for fitting: r[:train_end]
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
        roll = np.array([r[j - FORECAST_WINDOW : j].std() for j in range(start, len(r))])
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


def evaluate(
    preds: dict[str, np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    *,
    vol_ref: str = "ewma_0.94",
    band_z: dict[str, float] | None = None,
    seed: int = 7,
) -> dict[str, dict]:
    """Hold-out metrics with block-bootstrap 95% CIs; returns vs the zero forecast, vol vs ``vol_ref``."""
    idx = block_indices(groups, seed=seed)
    e0 = y**2
    out: dict[str, dict] = {}
    ref_q = None
    if vol_ref in preds:
        s2r = preds[vol_ref][:, 1] ** 2
        ref_q = np.log(s2r) + y**2 / s2r
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
            q = np.log(sd**2) + y**2 / sd**2
            m["qlike"] = float(q.mean())
            m["qlike_ci"] = _ci(q[idx].mean(axis=1))
            if ref_q is not None:
                m[f"qlike_minus_{vol_ref}"] = float(q.mean() - ref_q.mean())
                m[f"qlike_minus_{vol_ref}_ci"] = _ci((q - ref_q)[idx].mean(axis=1))
            m["mean_predicted_sd"] = float(sd.mean())
            z = (band_z or {}).get(name, Z_95)
            m["band_z"] = z
            m["coverage_95"] = band_coverage(np.nan_to_num(ret), sd, y, z)
            m["coverage_95_ci"] = _ci(_covered(np.nan_to_num(ret), sd, y, z)[idx].mean(axis=1))
        out[name] = m
    return out


def _covered(ret: np.ndarray, sd: np.ndarray, y: np.ndarray, z: float = Z_95) -> np.ndarray:
    return (np.abs(np.asarray(y) - ret) <= z * np.asarray(sd)).astype(np.float64)


def band_coverage(ret: np.ndarray, sd: np.ndarray, y: np.ndarray, z: float = Z_95) -> float:
    """Share of realised returns inside the served band ret +- z sd (should be about 0.95)."""
    return float(_covered(ret, sd, y, z).mean())


def calibrate_band_z(ret: np.ndarray, sd: np.ndarray, y: np.ndarray, level: float = 0.95) -> float:
    """The band multiplier that covers ``level`` of the *validation* moves: the ``level`` quantile
    of |r - mean| / sd. 1.96 for Gaussian standardised errors; larger when returns are fat-tailed
    (hourly FX: every Gaussian 1.96-sd band covered only 90-94% of the hold-out), smaller when the
    model's sd runs too wide. The sd itself is left as the model says (it is what QLIKE judges)."""
    u = np.abs(np.asarray(y) - np.asarray(ret)) / np.asarray(sd)
    return float(np.quantile(u[np.isfinite(u)], level))


def choose_default(metrics: dict[str, dict], candidates) -> tuple[str, str]:
    """The served model of one frequency: among exported models whose 95% band covers
    ``COVERAGE_OK`` of the hold-out moves and whose return RMSE is not worse than the zero
    forecast beyond the 95% CI, the lowest hold-out QLIKE. If none qualifies, the one whose
    coverage is nearest 95%."""
    lo, hi = COVERAGE_OK
    ok = [
        c
        for c in candidates
        if c in metrics and metrics[c]["rmse_minus_zero_ci"][0] <= 0 and lo <= metrics[c]["coverage_95"] <= hi
    ]
    if ok:
        best = min(ok, key=lambda c: metrics[c]["qlike"])
        return best, (
            f"lowest hold-out QLIKE ({metrics[best]['qlike']:.4f}) among exported models whose 95% band "
            f"covers {lo:.0%}-{hi:.0%} of the hold-out and that are not significantly worse than the "
            f"zero-return forecast on RMSE ({', '.join(ok)})"
        )
    best = min((c for c in candidates if c in metrics), key=lambda c: abs(metrics[c]["coverage_95"] - 0.95))
    return best, "no exported model passed the coverage and RMSE rules; fallback: coverage nearest 95%"
