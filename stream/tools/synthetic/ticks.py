"""Seeded synthetic ticks (geometric random walks): the ``ticks`` stream kind, and the forecast
pipeline's load for ``finstream bench`` (``load_records``, ``silent``, ``warmup``): one tick per
daily bar, so the bench knows exactly which ticks give a forecast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import islice

import numpy as np

from stream.core.contracts import SCHEMA_VERSION
from stream.tools.synthetic.world import START_MS

# daily ticks from 1990: each closes a 1d bar (the default interval)
BENCH_TICKS = {"start_ms": 631_152_000_000, "step_ms": 86_400_000}


def tick_stream(
    symbols: Sequence[str] = ("SYN-A", "SYN-B", "SYN-C"),
    seed: int = 7,
    start_ms: int = START_MS,
    step_ms: int = 1000,
    s0: float = 100.0,
    drift: float = 0.0,
    vol: float = 0.0005,
    spread_bps: float = 2.0,
) -> Iterator[dict]:
    """Endless geometric random walk ticks, one per symbol per step (``vol`` is per step).

    Prices: ``p[t+1] = p[t] * exp(drift - vol**2/2 + vol * Z)``; bid/ask straddle the price by
    ``spread_bps``; volume is lognormal. Records satisfy the ``ticks`` contract.
    """
    rng = np.random.default_rng(seed)
    prices = {s: float(s0) * float(np.exp(rng.normal(0, 0.2))) for s in symbols}
    half = spread_bps / 2e4
    counter = 0
    step = 0
    while True:
        ts = start_ms + step * step_ms
        for s in symbols:
            prices[s] *= float(np.exp(drift - 0.5 * vol * vol + vol * rng.standard_normal()))
            p = prices[s]
            counter += 1
            yield {
                "v": SCHEMA_VERSION,
                "symbol": s,
                "ts": int(ts),
                "price": round(p, 6),
                "bid": round(p * (1 - half), 6),
                "ask": round(p * (1 + half), 6),
                "volume": float(np.round(rng.lognormal(4.0, 1.0), 2)),
                "event_id": f"tick-{seed}-{counter:010d}",
            }
        step += 1


def tick_symbols(n: int) -> int:
    """Symbols for n ticks: ~200 ticks each (so most ticks have a full window), 1..50."""
    return max(1, min(50, n // 200))


def load_records(n: int, seed: int = 7, spread: int | None = None) -> list[tuple[bytes, bytes]]:
    """n daily ticks keyed by symbol, over as many symbols as ``spread`` ticks would use (default n)."""
    import orjson

    syms = [f"SYN-{i:02d}" for i in range(tick_symbols(spread or n))]
    return [
        (r["symbol"].encode(), orjson.dumps(r)) for r in islice(tick_stream(symbols=syms, seed=seed, **BENCH_TICKS), n)
    ]


def forecast_window(model_dir) -> int:
    """Closed bars the served forecaster reads (its input window)."""
    from stream.core.manifest import read_manifest

    return int(read_manifest(model_dir).default("forecast").inputs[0].shape[1])


def warming(records: list[tuple[bytes, bytes]], window: int) -> int:
    """Ticks that give no forecast on a fresh state: the first ``window`` + 1 of each symbol (with
    one tick per bar, tick k closes bar k-1, and a forecast needs ``window`` + 1 closed bars)."""
    per_symbol = Counter(k for k, _ in records)
    return sum(min(c, window + 1) for c in per_symbol.values())


def silent(records: list[tuple[bytes, bytes]], settings) -> int:
    """How many of these records give no output on a fresh state (the warming ticks)."""
    return warming(records, forecast_window(settings.model_dir))


def warmup(settings) -> list[tuple[bytes, bytes]]:
    """Warm-up ticks on symbols of their own, enough for each to give forecasts."""
    import orjson

    n = 2 * (forecast_window(settings.model_dir) + 10)
    it = tick_stream(symbols=("WARM-A", "WARM-B"), seed=99, **BENCH_TICKS)
    return [(r["symbol"].encode(), orjson.dumps(r)) for r in islice(it, n)]
