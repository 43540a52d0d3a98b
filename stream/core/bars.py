"""Time bars: ticks -> per-symbol OHLCV+count bars of a fixed interval, closed in event time.

Why bars: a forecaster is trained on returns between bars of one interval (a day, an hour); fed
tick-to-tick returns it answers a question nobody asked. So the stream aggregates each symbol's
ticks into bars of that symbol's interval and forecasts once per *closed* bar, from the window of
the last W+1 closes, exactly as training windows its bar series.

Rules (pure, deterministic; the stream applies them per symbol under the entity fence):

* Bars are aligned to the UTC epoch: a tick at ``ts`` belongs to the bar starting at
  ``ts - ts % interval``. Bar ``close_ts`` is the start plus the interval (exclusive end).
* A bar closes when the first tick of a *later* bar arrives (event time, no wall clock). The
  forecast made then is for the next bar's log return: ``horizon_s`` = one interval.
* Gaps: intervals with no tick make no bar. The window is the last W+1 *non-empty* bars, as the
  training series (trading days, FX hours without weekends) has no rows for closed markets.
* A late tick (older than the open bar's start: its bar is already closed and forecast) is
  refused with a reason (dead letter). A tick older than the symbol's newest tick but inside
  the open bar is accepted: it updates high, low, volume and count, not the close (the close is
  the price at the newest event time).
* A far-future tick (more than ``FUTURE_TOLERANCE_MS`` ahead of the caller's clock) is refused:
  accepting it would close the open bar and make every later real tick "late".
* Price: the tick's ``price``; a quote with only bid and ask is priced at the mid (the
  contract fills it in; see ``stream.core.contracts.parse_tick``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

FUTURE_TOLERANCE_MS = 10 * 60 * 1000  # clock skew we tolerate between producers and the worker
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


class BarError(ValueError):
    """A tick the bar rules refuse; ``str(err)`` is the dead-letter reason."""


@lru_cache(maxsize=256)
def parse_interval(text: str) -> int:
    """'1d' / '1h' / '30m' / '15s' / '1w' -> seconds (> 0)."""
    m = _INTERVAL.match(str(text).lower())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"bar interval {text!r} is not <n><s|m|h|d|w>, e.g. 1d, 1h, 30m")
    return int(m.group(1)) * _UNITS[m.group(2)]


def interval_name(seconds: int) -> str:
    """Seconds -> the shortest exact name ('3600' -> '1h'), the inverse of ``parse_interval``."""
    for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"bar interval of {seconds} s")


@lru_cache(maxsize=16)
def parse_overrides(text: str) -> dict[str, int]:
    """'EURUSD=1h,SP500=1d' -> {'EURUSD': 3600, 'SP500': 86400} (per-symbol intervals; cached: do
    not mutate the result)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        sym, sep, iv = part.partition("=")
        if not sep or not sym.strip():
            raise ValueError(f"bar interval override {part!r} is not SYMBOL=<interval>")
        out[sym.strip()] = parse_interval(iv)
    return out


@dataclass(slots=True)
class Bar:
    start: int  # epoch ms, inclusive
    close_ts: int  # epoch ms, exclusive end (start + interval)
    open: float
    high: float
    low: float
    close: float
    volume: float
    count: int
    last_ts: int  # event time of the tick that set the close

    def to_list(self) -> list:
        return [
            self.start,
            self.close_ts,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.count,
            self.last_ts,
        ]

    @classmethod
    def from_list(cls, x: list) -> Bar:
        return cls(
            int(x[0]), int(x[1]), float(x[2]), float(x[3]), float(x[4]), float(x[5]), float(x[6]), int(x[7]), int(x[8])
        )


@dataclass(slots=True)
class BarState:
    """A symbol's open bar and the closes of its last closed bars (oldest first).

    ``closes`` is never changed in place once a state holds it: ``advance`` makes a new list when
    a bar closes and otherwise hands the same list to the next state, and the ``Closed`` it returns
    (which the stream keeps as the tick's output snapshot) shares it too. One copy per closed bar
    instead of four (the stream runs this per tick)."""

    interval_s: int = 0
    open_bar: Bar | None = None
    closes: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"i": self.interval_s, "b": self.open_bar.to_list() if self.open_bar else None, "c": self.closes}

    @classmethod
    def from_dict(cls, d: dict | None) -> BarState:
        if not d:
            return cls()
        return cls(int(d["i"]), Bar.from_list(d["b"]) if d["b"] else None, list(map(float, d["c"])))


class Closed(NamedTuple):
    """What a tick's arrival closed: the finished bar and the closes window ending at it (a named
    tuple: one is made per closed bar, and a frozen dataclass's ``__init__`` cost twice as much)."""

    bar: Bar
    closes: list[float]  # up to ``keep`` closes, the last one is ``bar.close``; the new state's own list


def _new_bar(ts: int, interval_ms: int, price: float, volume: float) -> Bar:
    start = ts - ts % interval_ms
    return Bar(start, start + interval_ms, price, price, price, price, volume, 1, ts)


def advance(
    state: BarState, ts: int, price: float, volume: float | None, interval_s: int, keep: int, now_ms: int
) -> tuple[BarState, Closed | None]:
    """Apply one tick: (new state, the bar it closed or None). Raises ``BarError`` for a refused
    tick, leaving ``state`` untouched. ``keep`` closes are kept (the model window + 1).

    An interval change (configuration) restarts the symbol's bars: closes of another interval
    are another series.
    """
    if ts > now_ms + FUTURE_TOLERANCE_MS:
        raise BarError(
            f"far-future tick: ts {ts} is more than {FUTURE_TOLERANCE_MS // 60000} min ahead of "
            f"the worker clock ({now_ms})"
        )
    vol = float(volume or 0.0)
    interval_ms = interval_s * 1000
    if state.interval_s != interval_s:
        state = BarState(interval_s)
    bar = state.open_bar
    if bar is None:
        return BarState(interval_s, _new_bar(ts, interval_ms, price, vol), state.closes), None
    if ts < bar.start:
        raise BarError(
            f"late tick: ts {ts} belongs to a bar that closed at {bar.start} (the open bar of this symbol starts there)"
        )
    if ts < bar.close_ts:
        newest = ts >= bar.last_ts
        nb = Bar(
            bar.start,
            bar.close_ts,
            bar.open,
            max(bar.high, price),
            min(bar.low, price),
            price if newest else bar.close,
            bar.volume + vol,
            bar.count + 1,
            ts if newest else bar.last_ts,
        )
        return BarState(interval_s, nb, state.closes), None
    closes = state.closes + [bar.close]
    if len(closes) > keep:
        del closes[:-keep]
    return BarState(interval_s, _new_bar(ts, interval_ms, price, vol), closes), Closed(bar, closes)


def aggregate(
    ticks, interval_s: int, keep: int = 1 << 30, now_ms: int = 1 << 62
) -> tuple[list[Bar], list[tuple[int, str]], BarState]:
    """Fold a sequence of (ts, price, volume) through ``advance``: (closed bars, refused
    (index, reason) pairs, final state). The training/test path of the same rules."""
    st, bars, refused = BarState(), [], []
    for i, (ts, price, volume) in enumerate(ticks):
        try:
            st, closed = advance(st, int(ts), float(price), volume, interval_s, keep, now_ms)
        except BarError as exc:
            refused.append((i, str(exc)))
            continue
        if closed is not None:
            bars.append(closed.bar)
    return bars, refused, st


# --------------------------------------------------------------------------- a model per frequency


def forecast_slot(interval_s: int) -> str:
    """The manifest's served slot for forecasters of one bar interval, e.g. ``forecast@1h``."""
    return f"forecast@{interval_name(interval_s)}"


class FrequencyMismatch(ValueError):
    """No forecaster trained at a configured bar interval (and no scaling fallback allowed)."""


def plan_forecasters(trained: dict[str, int], intervals, fallback: bool) -> dict[int, str]:
    """Bar interval (s) -> the served slot whose model forecasts it.

    ``trained`` maps each ``forecast@<interval>`` slot of the manifest to the bar interval its
    model was trained at (``ModelCard.extra['bar_s']``). A slot's model must be trained at the
    slot's own interval. Without ``fallback`` every configured interval needs its own model;
    with it, an interval without one is served by the model of the nearest interval (in log
    time), square-root-of-time scaled (``scale_factor``).
    """
    for slot, bar_s in trained.items():
        if slot != forecast_slot(bar_s):
            raise FrequencyMismatch(f"manifest slot {slot} names a forecaster trained at {interval_name(bar_s)} bars")
    by_s = {bar_s: slot for slot, bar_s in trained.items()}
    plan: dict[int, str] = {}
    for iv in sorted(intervals):
        if iv in by_s:
            plan[iv] = by_s[iv]
            continue
        have = ", ".join(interval_name(s) for s in sorted(by_s)) or "none"
        if not fallback or not by_s:
            raise FrequencyMismatch(
                f"no forecaster trained at {interval_name(iv)} bars (FINSTREAM_BAR_INTERVAL(S)); the manifest has: "
                f"{have}. Train one, or set FINSTREAM_BAR_SCALING_FALLBACK=true to serve the nearest one "
                f"square-root-of-time scaled"
            )
        import math

        plan[iv] = by_s[min(by_s, key=lambda s: (abs(math.log(s / iv)), s))]
    return plan


def scale_factor(bar_s: int, model_bar_s: int) -> float:
    """k = bar_s / model_bar_s: under a random walk a k-times longer bar has k times the mean log
    return and sqrt(k) times its sd. The fallback feeds the model returns divided by sqrt(k) and
    multiplies its mean by k and its sd by sqrt(k). 1.0 when the model matches."""
    return bar_s / model_bar_s
