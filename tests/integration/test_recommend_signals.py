"""Issue 12 on the real stack: linked card spend reaches the recommender through the fenced profile,
and what a user does now changes their recommendations, each with a reason."""

from __future__ import annotations

from tests.integration.workers import consume, produce

TS = 1_700_000_000_000


def _ue(user, i, product, action):
    return user, {
        "v": 1,
        "user_id": user,
        "ts": TS + i * 1000,
        "product_id": product,
        "action": action,
        "event_id": f"{user}-{i}",
    }


def _txn(i, account, category, user=None):
    t = {
        "v": 1,
        "event_id": f"t{i}",
        "account_id": account,
        "ts": TS + 10_000 + i * 1000,
        "amount": 80.0,
        "currency": "EUR",
        "merchant_category": category,
        "channel": "pos",
        "country": "DE",
    }
    return account, ({**t, "user_id": user} if user else t)


def test_linked_spend_moves_interest_through_the_fenced_profile(worker_run):
    run = worker_run().start()
    s = run.settings
    produce(s, s.topic_user_events, [_ue("u-spend", 0, "motorcycle", "buy"), _ue("u-spend", 1, "fire", "view")])
    got = consume(s, [s.topic_recommendations], until=lambda g: len(g[s.topic_recommendations]) >= 2, timeout=120)
    before = [v for _, v in got[s.topic_recommendations]]
    assert len(before) == 2, run.log_text()[-3000:]
    txns = [
        _txn(0, "acct-9", "5551", "u-spend"),
        _txn(1, "acct-9", "grocery", "u-spend"),
        _txn(2, "acct-9", "5551", "u-spend"),
        _txn(3, "acct-x", "fuel"),
    ]  # acct-x links to nobody
    produce(s, s.topic_transactions, txns)
    spends = lambda g: [v for _, v in g[s.topic_recommendations] if v["trigger"]["action"] == "spend"]  # noqa: E731
    got = consume(
        s,
        [s.topic_recommendations, s.topic_user_events, s.topic_risk_scores],
        until=lambda g: len(spends(g)) >= 2 and len(g[s.topic_risk_scores]) >= 4,
        timeout=120,
    )
    assert len(got[s.topic_risk_scores]) == 4, run.log_text()[-3000:]
    derived = [(k, v) for k, v in got[s.topic_user_events] if v.get("action") == "spend"]
    # exactly one derived event per linked transaction in a mapped category, keyed by the user
    assert sorted(v["event_id"] for _, v in derived) == ["txn:t0", "txn:t2"]
    assert {k for k, _ in derived} == {b"u-spend"} and {v["product_id"] for _, v in derived} == {"boat"}
    recs = spends(got)
    assert len(recs) == 2 and all(r["user_id"] == "u-spend" for r in recs)
    last = recs[-1]
    # the fenced profile kept the earlier events: holdings from the buy, interest from view + two spends
    assert last["holdings"] == ["motorcycle"] and last["recent"] == ["fire", "boat", "boat"]
    assert last["trigger"] == {"product_id": "boat", "action": "spend", "merchant_category": "5551"}
    items = {i["product_id"]: i for i in last["items"]}
    assert "motorcycle" not in items  # held: never recommended
    assert "boat" in items and items["boat"]["reason"] == "because you spent on a boat dealer (Boat policy)"
    rank_before = [i["product_id"] for i in before[-1]["items"]]
    assert "boat" not in rank_before or rank_before.index("boat") > list(items).index("boat")
    assert all(i["reason"] for i in last["items"])
