"""The demo's terminal view sorts outputs into its panels by the same topic map as the dashboard."""

from stream.settings import Settings
from stream.tools.demo import View


def test_outputs_land_in_their_panels_and_every_topic_is_counted(monkeypatch):
    monkeypatch.setenv("FINSTREAM_TOPIC_FORECASTS", "demo-x-forecasts")
    s = Settings()
    v = View(s)
    v.add("demo-x-forecasts", {"symbol": "SPX"})
    v.add(s.topic_risk_scores, {"account_id": "a"})  # published beside the alerts, not shown
    v.add(s.topic_risk_alerts, {"account_id": "a"})
    v.add(s.topic_recommendations, {"user_id": "u1"})
    v.add(s.topic_recommendations, {"user_id": "story-1"})
    assert list(v.forecasts) == ["SPX"] and [a["account_id"] for a in v.alerts] == ["a"]
    assert [r["user_id"] for r in v.recs] == ["u1"] and [r["user_id"] for r in v.story] == ["story-1"]
    assert v.counts == {
        "demo-x-forecasts": 1,
        s.topic_risk_scores: 1,
        s.topic_risk_alerts: 1,
        s.topic_recommendations: 2,
    }


def test_the_panels_render_and_the_horizon_is_in_the_dashboards_words():
    from rich.console import Console

    s = Settings()
    v = View(s)
    v.add(
        s.topic_forecasts,
        {
            "symbol": "SPX",
            "bar_close_ts": 1_700_006_400_000,
            "horizon_s": 86400,
            "last_price": 4500.0,
            "predicted_return": 0.001,
            "predicted_volatility": 0.01,
            "band_95": [-0.02, 0.021],
            "model": "forecast_bars",
            "model_version": "3",
        },
    )
    v.add(
        s.topic_risk_alerts,
        {
            "account_id": "13926-315",
            "amount": 68.5,
            "currency": "USD",
            "risk_score": 0.91,
            "threshold": 0.5,
            "reasons": [{"reason": "new device on this card"}],
        },
    )
    v.add(
        s.topic_recommendations,
        {
            "user_id": "u1",
            "trigger": {"action": "view", "product_id": "trailer"},
            "holdings": ["car"],
            "items": [{"product_id": "fire"}, {"product_id": "trailer"}],
        },
    )
    console = Console(record=True, width=200)
    console.print(v.render())
    text = console.export_text()
    assert "next 1 day" in text and "SPX" in text and "[-2.00%, +2.10%]" in text
    assert (
        "68.50 USD" in text and "new device on this card" in text and "view trailer" in text and "fire, trailer" in text
    )
