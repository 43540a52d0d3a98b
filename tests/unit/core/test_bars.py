"""Time bars (stream.core.bars) on real prices, checked against pandas' resample of the same ticks."""

import pandas as pd
import pytest

from stream.core.bars import (
    FUTURE_TOLERANCE_MS,
    BarError,
    BarState,
    FrequencyMismatch,
    advance,
    aggregate,
    forecast_slot,
    parse_interval,
    parse_overrides,
    plan_forecasters,
)
from stream.settings import REPO_ROOT
from stream.tools.replay import read_csv

SP500 = REPO_ROOT / "stream" / "data" / "sp500.csv"


def sp500_ticks(n: int = 600) -> pd.DataFrame:
    rows = list(read_csv(SP500))[:n]
    idx = pd.DatetimeIndex([r["Date"] for r in rows])  # naive = UTC
    return pd.DataFrame(
        {"price": [float(r["Close"]) for r in rows], "volume": [float(r["Volume"]) for r in rows]}, index=idx
    )


def eurusd_ticks() -> pd.DataFrame:
    from training.data.market import _eurusd

    df = _eurusd().iloc[:2000]
    return df.rename(columns={"Close": "price", "Volume": "volume"})[["price", "volume"]]


def pandas_bars(ticks: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The reference: epoch-aligned resample, empty bins dropped (the stream makes no empty bars)."""
    g = ticks.resample(rule, origin="epoch", label="left", closed="left")
    out = pd.DataFrame(
        {
            "open": g["price"].first(),
            "high": g["price"].max(),
            "low": g["price"].min(),
            "close": g["price"].last(),
            "volume": g["volume"].sum(),
            "count": g["price"].count(),
        }
    )
    return out[out["count"] > 0]


@pytest.mark.parametrize(
    "source, interval, rule",
    [
        (sp500_ticks, "1w", "7D"),  # daily S&P 500 closes -> weekly bars (epoch-aligned: Thursdays)
        (eurusd_ticks, "1d", "1D"),  # hourly EUR/USD closes -> daily bars
        (eurusd_ticks, "4h", "4h"),
    ],
)
def test_bars_equal_a_pandas_resample_of_the_same_real_ticks(source, interval, rule):
    ticks = source()
    ts = ticks.index.as_unit("ms").asi8
    bars, refused, state = aggregate(zip(ts, ticks["price"], ticks["volume"]), parse_interval(interval))
    assert refused == []
    ref = pandas_bars(ticks, rule).iloc[:-1]  # the last bar is still open (no later tick yet)
    assert len(bars) == len(ref) > 10
    got = pd.DataFrame(
        [[b.open, b.high, b.low, b.close, b.volume, b.count] for b in bars],
        columns=ref.columns,
        index=pd.to_datetime([b.start for b in bars], unit="ms"),
    )
    got.index = got.index.as_unit("ms")
    ref.index = ref.index.as_unit("ms")
    pd.testing.assert_frame_equal(got, ref, check_dtype=False, check_freq=False, check_names=False)
    assert all(b.close_ts - b.start == parse_interval(interval) * 1000 for b in bars)
    assert state.open_bar.start == pandas_bars(ticks, rule).index.as_unit("ms").asi8[-1]


def test_late_tick_is_refused_and_in_bar_disorder_keeps_the_close():
    H = 3_600_000
    st, _ = advance(BarState(), 10 * H + 100, 1.0, 1, 3600, 4, 1 << 62)
    st, _ = advance(st, 10 * H + 500, 1.2, 1, 3600, 4, 1 << 62)
    st, _ = advance(st, 10 * H + 300, 0.9, 1, 3600, 4, 1 << 62)  # older, same open bar: accepted
    assert (st.open_bar.high, st.open_bar.low, st.open_bar.close, st.open_bar.count) == (1.2, 0.9, 1.2, 3)
    st, closed = advance(st, 12 * H + 1, 1.1, 1, 3600, 4, 1 << 62)  # an empty hour in between: no bar for it
    assert closed.bar.close == 1.2 and closed.closes == [1.2] and st.open_bar.start == 12 * H
    with pytest.raises(BarError, match="late tick"):
        advance(st, 11 * H + 5, 1.0, 1, 3600, 4, 1 << 62)


def test_far_future_tick_is_refused_against_the_clock():
    now = 1_700_000_000_000
    advance(BarState(), now + FUTURE_TOLERANCE_MS, 1.0, None, 60, 4, now)
    with pytest.raises(BarError, match="far-future"):
        advance(BarState(), now + FUTURE_TOLERANCE_MS + 1, 1.0, None, 60, 4, now)


def test_closes_window_is_trimmed_to_keep_and_survives_a_round_trip():
    bars, _, st = aggregate(((k * 60_000, 100 + k, 0) for k in range(10)), 60, keep=3)
    assert len(bars) == 9 and st.closes == [106.0, 107.0, 108.0]
    assert BarState.from_dict(st.to_dict()) == st


def test_intervals_and_overrides_parse_or_explain():
    assert parse_interval("1d") == 86400 and parse_interval("30m") == 1800
    assert parse_overrides("EURUSD=1h, SP500=1d") == {"EURUSD": 3600, "SP500": 86400}
    with pytest.raises(ValueError, match="1d, 1h"):
        parse_interval("hourly")
    assert forecast_slot(3600) == "forecast@1h" and forecast_slot(86400) == "forecast@1d"


def test_a_model_per_frequency_or_a_stated_fallback():
    trained = {"forecast@1h": 3600, "forecast@1d": 86400}
    assert plan_forecasters(trained, {3600, 86400}, False) == {3600: "forecast@1h", 86400: "forecast@1d"}
    with pytest.raises(FrequencyMismatch, match="no forecaster trained at 30m bars.*1h, 1d.*FALLBACK"):
        plan_forecasters(trained, {1800}, False)
    assert plan_forecasters(trained, {1800}, True) == {1800: "forecast@1h"}
    with pytest.raises(FrequencyMismatch, match="trained at 1d"):
        plan_forecasters({"forecast@1h": 86400}, {3600}, True)
