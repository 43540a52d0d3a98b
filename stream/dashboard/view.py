"""What the page shows, as plain dicts: output records normalised for the browser, kept bounded.

Why normalise here and not in JavaScript: the output schemas move (forecasts become per closed
bar with ``bar_s``/``horizon_s``/``band``; recommendations gain a ``reason``), and one tolerant
reader in Python, unit-tested against both shapes, is easier to keep right than the page.
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict, deque

#: pipeline (``stream.pipelines``) -> the panel that draws its watched output (``Pipeline.watched``);
#: the page has no panel for another pipeline, so its outputs are not read
PANELS = {"forecast": "forecast", "risk": "alert", "recommend": "recommendation"}
DEAD_LETTER = "dead_letter"


def _first(d: dict, *names, default=None):
    for n in names:
        v = d.get(n)
        if v is not None:
            return v
    return default


def horizon_label(v: dict) -> str:
    """A forecast's horizon in words ("next 2 hours"): the page's and the demo's wording."""
    if v.get("horizon_s"):
        s = float(v["horizon_s"])
        if s % 86400 == 0:
            return f"next {int(s // 86400)} day{'s' if s > 86400 else ''}"
        if s % 3600 == 0 and s >= 3600:
            return f"next {int(s // 3600)} hour{'s' if s > 3600 else ''}"
        if s % 60 == 0:
            return f"next {int(s // 60)} minute{'s' if s > 60 else ''}"
        return f"next {s:g} seconds"
    n = int(v.get("horizon") or 1)
    return "next tick" if n == 1 else f"next {n} ticks"


def forecast(v: dict) -> dict | None:
    """A forecast in price terms: last price, predicted price and its 95% band at the target time.
    Returns None for a record without a symbol or a price (nothing to draw)."""
    symbol, price = v.get("symbol"), _first(v, "last_price", "close", "price", "last_close")
    ts = _first(v, "close_ts", "bar_close_ts", "bar_end", "close_time", "ts")
    if symbol is None or price is None or ts is None:
        return None
    price, ts = float(price), int(ts)
    ret = float(v.get("predicted_return") or 0.0)
    band = _first(v, "band_95", "band", default=None)
    if isinstance(band, dict):
        band = [_first(band, "lo", "low", "lower"), _first(band, "hi", "high", "upper")]
    lo, hi = (float(band[0]), float(band[1])) if band and None not in band[:2] else (ret, ret)
    in_returns = abs(lo) < 1 and abs(hi) < 1  # bands are returns today; accept prices too
    out = {
        "symbol": str(symbol),
        "ts": ts,
        "price": price,
        "predicted": price * (1 + ret),
        "lo": price * (1 + lo) if in_returns else lo,
        "hi": price * (1 + hi) if in_returns else hi,
        "ret": ret,
        "vol": float(v.get("predicted_volatility") or 0.0),
        "horizon": horizon_label(v),
        "horizon_ms": int(float(v["horizon_s"]) * 1000) if v.get("horizon_s") else None,
        "model": v.get("model"),
        "version": v.get("model_version"),
    }
    if v.get("bar_s"):
        out["bar_s"] = v["bar_s"]
    return out


def alert(v: dict) -> dict:
    reasons = [
        r.get("reason") or r.get("text") or r.get("feature") if isinstance(r, dict) else str(r)
        for r in v.get("reasons") or []
    ]
    return {
        "account_id": v.get("account_id"),
        "ts": v.get("ts"),
        "amount": v.get("amount"),
        "currency": v.get("currency"),
        "score": v.get("risk_score", v.get("score")),
        "threshold": v.get("threshold"),
        "reasons": [r for r in reasons if r],
        "model": v.get("model"),
        "version": v.get("model_version"),
    }


def recommendation(v: dict) -> dict:
    items = [
        {"product_id": i.get("product_id"), "score": i.get("score"), "reason": i.get("reason")}
        if isinstance(i, dict)
        else {"product_id": str(i)}
        for i in v.get("items") or []
    ]
    return {
        "user_id": v.get("user_id"),
        "ts": v.get("ts"),
        "holdings": list(v.get("holdings") or []),
        "items": items,
        "reason": v.get("reason"),
        "trigger": v.get("trigger"),
        "model": v.get("model"),
        "version": v.get("model_version"),
    }


class Board:
    """Bounded state of the page: a numbered log of updates that each browser follows from its
    own position (a slow browser misses old updates instead of growing the server)."""

    def __init__(self, kinds: dict[str, str], keep: int = 5000):
        self.kinds = kinds  # topic -> a panel (PANELS) or DEAD_LETTER
        self.counts: Counter = Counter()
        self.log: deque = deque(maxlen=keep)
        self._seq = itertools.count(1)
        self.last_forecast: dict[str, dict] = {}
        self.latest_recs: OrderedDict = OrderedDict()
        self.alerts: deque = deque(maxlen=50)

    def add(self, topic: str, v: dict) -> None:
        kind = self.kinds.get(topic)
        if kind is None:
            return
        self.counts[kind] += 1
        if kind == "forecast":
            item = forecast(v)
            if item is None:
                return
            self.last_forecast[item["symbol"]] = item
        elif kind == "alert":
            item = alert(v)
            self.alerts.appendleft(item)
        elif kind == "recommendation":
            item = recommendation(v)
            self.latest_recs[item["user_id"]] = item
            self.latest_recs.move_to_end(item["user_id"])
            while len(self.latest_recs) > 200:
                self.latest_recs.popitem(last=False)
        else:
            item = {"reason": v.get("reason"), "source": v.get("source")}
        self.log.append((next(self._seq), kind, item))

    def since(self, seq: int) -> tuple[int, list]:
        """(newest seq, updates after ``seq``); the first call of a browser passes 0."""
        items = [(k, item) for s, k, item in self.log if s > seq]
        return (self.log[-1][0] if self.log else seq), items
