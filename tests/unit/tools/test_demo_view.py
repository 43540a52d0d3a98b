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
