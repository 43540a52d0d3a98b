"""Feature computation shared by training and serving: what is served is what was trained.

Pure numpy and plain Python; nothing here knows about Kafka, Redis, Faust or TensorFlow.
Three families:

* market: log returns of a price window, standardised with stored statistics and clipped
  (the clip is the outlier rule, identical offline and online);
* transactions: a per-account state machine (``AccountState``) whose ``features`` are taken
  *before* the transaction is applied with ``advance``; training replays histories through
  exactly the same two functions;
* products: a customer's holdings vector and attributes in catalogue order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# --------------------------------------------------------------------------- market

FORECAST_WINDOW = 32  # returns per model input window (the manifest carries the served value)
RETURN_CLIP = 8.0  # standardised returns beyond +-8 sd are winsorised (data-quality rule)


def log_returns(prices: np.ndarray) -> np.ndarray:
    """Log returns along the last axis; prices must be > 0 (the contract guarantees it)."""
    return np.diff(np.log(np.asarray(prices, dtype=np.float64)), axis=-1)


@dataclass(frozen=True, slots=True)
class Standardiser:
    """Stored normalisation statistics (from the manifest), applied identically everywhere."""

    mean: float
    std: float
    clip: float = RETURN_CLIP

    def apply(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return np.clip(z, -self.clip, self.clip)

    @classmethod
    def fit(cls, x: np.ndarray, clip: float = RETURN_CLIP) -> Standardiser:
        x = np.asarray(x, dtype=np.float64)
        std = float(np.std(x))
        return cls(float(np.mean(x)), std if std > 0 else 1.0, clip)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict) -> Standardiser:
        return cls(float(d["mean"]), float(d["std"]), float(d.get("clip", RETURN_CLIP)))


def forecast_input(price_windows: np.ndarray, norm: Standardiser) -> np.ndarray:
    """(N, W+1) prices -> (N, W, 1) float32 standardised log returns: the forecasters' input."""
    r = log_returns(price_windows)
    return norm.apply(r).astype(np.float32)[..., None]


def return_windows(returns: np.ndarray, window: int) -> np.ndarray:
    """All length-``window`` windows of a 1-D series, as a read-only (n-window+1, window) view."""
    return np.lib.stride_tricks.sliding_window_view(np.asarray(returns), window)


def forecast_band(pred_return: np.ndarray, pred_vol: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric band around the predicted return (vol is floored at 0)."""
    vol = np.maximum(pred_vol, 0.0)
    return pred_return - z * vol, pred_return + z * vol


# --------------------------------------------------------------------- transactions

VELOCITY_HORIZONS_S = (3600, 86400)
HIGH_RISK_CATEGORIES = frozenset({"gambling", "crypto", "cash_advance", "jewelry", "money_transfer"})
_RECENT_CAP = 64  # (ts, amount) pairs kept for velocity: counts saturate at this many per 24h
_COUNTRY_CAP = 8
_CATEGORY_CAP = 16
_EWMA_ALPHA = 0.1
_PRIOR_LOG_MEAN = math.log(50.0)
_PRIOR_LOG_VAR = 1.0
# Sums are clamped here and every row is checked: features stay finite whatever an account's
# history holds (two amounts of 1e308 once made the 24-hour spend infinite and every later score
# of the account NaN for a day). The edge bounds amounts far below this (contracts.AMOUNT_MAX).
_FINITE_CAP = 1e300

TXN_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_z",
    "txn_count_1h",
    "txn_count_24h",
    "spend_24h_ratio",
    "log_secs_since_last",
    "new_country",
    "country_changed",
    "new_merchant_category",
    "channel_ecom",
    "channel_atm",
    "night_time_utc",
    "high_risk_category",
    "first_transaction",
)

# Plain words for reason codes.
TXN_FEATURE_LABELS: dict[str, str] = {
    "log_amount": "large transaction amount",
    "amount_z": "amount unusual for this account",
    "txn_count_1h": "many transactions in the last hour",
    "txn_count_24h": "many transactions in the last 24 hours",
    "spend_24h_ratio": "high spend in the last 24 hours versus usual",
    "log_secs_since_last": "long gap since the previous transaction",
    "new_country": "country never seen for this account",
    "country_changed": "country differs from the previous transaction",
    "new_merchant_category": "merchant category new for this account",
    "channel_ecom": "online (card-not-present) channel",
    "channel_atm": "ATM withdrawal",
    "night_time_utc": "night-time transaction",
    "high_risk_category": "high-risk merchant category",
    "first_transaction": "first transaction seen for this account",
}


@dataclass(slots=True)
class AccountState:
    """Everything the risk features need to know about an account's past."""

    n: int = 0
    last_ts: int | None = None
    last_country: str | None = None
    log_mean: float = _PRIOR_LOG_MEAN
    log_var: float = _PRIOR_LOG_VAR
    recent: list[list[float]] = field(default_factory=list)  # [[ts_ms, amount], ...] newest last
    countries: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "last_ts": self.last_ts,
            "last_country": self.last_country,
            "log_mean": self.log_mean,
            "log_var": self.log_var,
            "recent": self.recent,
            "countries": self.countries,
            "categories": self.categories,
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> AccountState:
        if not d:
            return cls()
        return cls(
            d["n"],
            d["last_ts"],
            d["last_country"],
            d["log_mean"],
            d["log_var"],
            [list(x) for x in d["recent"]],
            list(d["countries"]),
            list(d["categories"]),
        )


def txn_features(state: AccountState, ts: int, amount: float, country: str, category: str, channel: str) -> list[float]:
    """Features of one transaction given the account's state *before* it (order = TXN_FEATURES)."""
    log_amount = math.log1p(amount)
    z = (log_amount - state.log_mean) / math.sqrt(state.log_var + 1e-6)
    counts = []
    spend_24h = 0.0
    for horizon in VELOCITY_HORIZONS_S:
        since = ts - horizon * 1000
        c = 0
        for t, a in state.recent:
            if since <= t <= ts:
                c += 1
                if horizon == 86400:
                    spend_24h = min(spend_24h + a, _FINITE_CAP)
        counts.append(float(c))
    usual = math.expm1(state.log_mean)
    gap_s = (ts - state.last_ts) / 1000.0 if state.last_ts is not None else 0.0
    hour = (ts // 3_600_000) % 24
    first = state.n == 0
    row = [
        log_amount,
        max(-10.0, min(10.0, z)),
        counts[0],
        counts[1],
        math.log1p(min(spend_24h + amount, _FINITE_CAP) / max(usual, 1.0)),
        math.log1p(max(gap_s, 0.0)),
        float(not first and country not in state.countries),
        float(state.last_country is not None and country != state.last_country),
        float(not first and category not in state.categories),
        float(channel == "ecom"),
        float(channel == "atm"),
        float(hour < 6),
        float(category in HIGH_RISK_CATEGORIES),
        float(first),
    ]
    return row if math.isfinite(math.fsum(row)) else _finite(row)


def _finite(row: list[float]) -> list[float]:
    """Last line of defence (not reached with inputs inside the contract's ranges)."""
    return [0.0 if math.isnan(v) else max(-_FINITE_CAP, min(_FINITE_CAP, v)) for v in row]


def advance(state: AccountState, ts: int, amount: float, country: str, category: str) -> AccountState:
    """The account's state after one transaction (a new object; the input is left unchanged)."""
    log_amount = math.log1p(amount)
    if state.n == 0:
        mean, var = log_amount, _PRIOR_LOG_VAR
    else:
        diff = log_amount - state.log_mean
        mean = state.log_mean + _EWMA_ALPHA * diff
        var = (1 - _EWMA_ALPHA) * (state.log_var + _EWMA_ALPHA * diff * diff)
    horizon_start = ts - VELOCITY_HORIZONS_S[-1] * 1000
    recent = [r for r in state.recent if r[0] >= horizon_start]
    recent.append([ts, amount])
    countries = [c for c in state.countries if c != country] + [country]
    categories = [c for c in state.categories if c != category] + [category]
    return AccountState(
        n=state.n + 1,
        last_ts=ts if state.last_ts is None else max(ts, state.last_ts),
        last_country=country,
        log_mean=mean,
        log_var=max(var, 1e-4),
        recent=recent[-_RECENT_CAP:],
        countries=countries[-_COUNTRY_CAP:],
        categories=categories[-_CATEGORY_CAP:],
    )


def replay_features(transactions) -> np.ndarray:
    """Features for a time-ordered iterable of (account_id, ts, amount, country, category, channel).

    The training path: every row is featurised from the state its account had just before it,
    through the same two functions the stream calls.
    """
    states: dict[str, AccountState] = {}
    rows = []
    for account, ts, amount, country, category, channel in transactions:
        st = states.get(account) or AccountState()
        rows.append(txn_features(st, ts, amount, country, category, channel))
        states[account] = advance(st, ts, amount, country, category)
    return np.asarray(rows, dtype=np.float32).reshape(-1, len(TXN_FEATURES))


# ------------------------------------------------------------------------- products


def holdings_vector(held: set[str] | frozenset[str], product_ids: tuple[str, ...]) -> np.ndarray:
    """A 0/1 float32 vector of a customer's holdings in catalogue order."""
    return np.fromiter((1.0 if p in held else 0.0 for p in product_ids), dtype=np.float32, count=len(product_ids))
