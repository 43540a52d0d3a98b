"""The dashboard reads today's output records and the announced new shapes alike."""

import pytest

from stream.dashboard import promread
from stream.dashboard.view import Board, alert, forecast, horizon_label, recommendation

OLD = {
    "symbol": "SPX",
    "ts": 1_000_000,
    "horizon": 1,
    "last_price": 100.0,
    "predicted_return": 0.01,
    "predicted_volatility": 0.02,
    "band_95": [-0.03, 0.05],
    "model": "forecast_lstm",
    "model_version": "1",
}
NEW = {
    "symbol": "SPX",
    "bar_s": 60,
    "horizon_s": 300,
    "close": 200.0,
    "close_ts": 2_000_000,
    "predicted_return": -0.01,
    "predicted_volatility": 0.01,
    "band": {"lo": -0.03, "hi": 0.01},
    "model": "forecast_bars",
    "model_version": "2",
}


def test_forecast_old_shape_in_price_terms():
    f = forecast(OLD)
    assert (f["price"], f["ts"], f["horizon"], f["horizon_ms"]) == (100.0, 1_000_000, "next tick", None)
    assert f["predicted"] == pytest.approx(101.0) and (f["lo"], f["hi"]) == pytest.approx((97.0, 105.0))


def test_forecast_bar_shape_shows_minutes():
    f = forecast(NEW)
    assert (f["price"], f["ts"], f["horizon"], f["horizon_ms"], f["bar_s"]) == (
        200.0,
        2_000_000,
        "next 5 minutes",
        300_000,
        60,
    )
    assert (f["lo"], f["hi"]) == pytest.approx((194.0, 202.0))


def test_horizon_labels_and_unusable_forecast():
    assert horizon_label({"horizon_s": 60}) == "next 1 minute"
    assert horizon_label({"horizon_s": 7200}) == "next 2 hours"
    assert horizon_label({"horizon_s": 86400}) == "next 1 day" and horizon_label({"horizon_s": 172800}) == "next 2 days"
    assert horizon_label({"horizon": 3}) == "next 3 ticks"
    assert forecast({"symbol": "X"}) is None


def test_alert_reasons_in_words_and_recommendation_reason_optional():
    a = alert(
        {
            "account_id": "a",
            "risk_score": 0.9,
            "threshold": 0.5,
            "reasons": [{"feature": "amt", "reason": "large transaction amount"}, "night-time transaction"],
        }
    )
    assert a["reasons"] == ["large transaction amount", "night-time transaction"] and a["score"] == 0.9
    r = recommendation({"user_id": "u", "holdings": ["car"], "items": [{"product_id": "fire", "score": 0.2}]})
    assert r["reason"] is None and r["items"][0]["product_id"] == "fire"
    assert (
        recommendation({"user_id": "u", "reason": "because you hold car", "items": []})["reason"]
        == "because you hold car"
    )


def test_board_follows_updates_by_sequence():
    b = Board({"f": "forecast", "a": "alert", "r": "recommendation", "d": "dead_letter"})
    b.add("f", OLD)
    b.add("a", {"account_id": "x", "reasons": []})
    seq, items = b.since(0)
    assert [k for k, _ in items] == ["forecast", "alert"]
    b.add("r", {"user_id": "u"})
    b.add("other", {})
    seq2, items = b.since(seq)
    assert seq2 == seq + 1 and [k for k, _ in items] == ["recommendation"]
    assert dict(b.counts) == {"forecast": 1, "alert": 1, "recommendation": 1}


def test_quantile_from_buckets():
    buckets = [(0.1, 50.0), (1.0, 90.0), (float("inf"), 100.0)]
    assert promread.quantile(0.5, buckets) == pytest.approx(0.1)
    assert promread.quantile(0.7, buckets) == pytest.approx(0.55)
    assert promread.quantile(0.99, buckets) == 1.0
    assert promread.quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None


def test_summarise_rates_and_window_latency():
    def scrape(events, fast, slow):
        return promread.parse(
            f'finstream_events_total{{slot="risk",topic="t"}} {events}\n'
            f'finstream_end_to_end_latency_seconds_bucket{{slot="risk",le="0.1"}} {fast}\n'
            f'finstream_end_to_end_latency_seconds_bucket{{slot="risk",le="1.0"}} {fast + slow}\n'
            f'finstream_end_to_end_latency_seconds_bucket{{slot="risk",le="+Inf"}} {fast + slow}\n'
            'finstream_ready 1\nfinstream_consumer_lag_messages{topic="t",partition="0"} 7\n'
        )

    prev, cur = scrape(100, 100, 0), scrape(300, 100, 200)
    s = promread.summarise(prev, cur, 2.0)
    job = s["jobs"]["risk"]
    assert job["events_per_s"] == 100.0 and job["events_total"] == 300.0
    assert job["latency_s"]["p50"] > 0.1  # only the last window's (slow) events count
    assert s["ready"] is True and s["lag"] == {"t": 7.0}


def test_the_page_reads_each_pipelines_watched_output_under_its_configured_name(monkeypatch):
    from stream import pipelines
    from stream.dashboard.server import board_for
    from stream.settings import Settings

    monkeypatch.setenv("FINSTREAM_TOPIC_RISK_ALERTS", "alerts-renamed")
    s = Settings()
    kinds = board_for(s).kinds
    assert kinds == {
        s.topic_forecasts: "forecast",
        "alerts-renamed": "alert",
        s.topic_recommendations: "recommendation",
        s.topic_dead_letters: "dead_letter",
    }
    echo = pipelines.Pipeline(**{**pipelines.get("recommend").__dict__, "name": "echo", "order": 99})
    assert echo.watched_topic(s) == s.topic_recommendations  # undeclared: the main output
    assert set(kinds.values()) - {"dead_letter"} == {"forecast", "alert", "recommendation"}
