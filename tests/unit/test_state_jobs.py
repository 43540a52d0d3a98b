"""Each job's ``process()`` driven in milliseconds on the in-process state backend with the real
bundled ONNX models: dead letters, warm-up, exact redelivery, model swap between batches.
(Integration tests keep real Kafka and Redis; this is about the jobs' own rules.)"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil

import orjson
import pytest

from stream.core.products import PRODUCT_IDS
from stream.core.records import SourceRecord
from stream.serving.models import ModelRegistry
from stream.settings import REPO_ROOT, Settings
from stream.state.memory import MemoryState
from stream.worker import build_jobs

MODELS = REPO_ROOT / "onnx_models"


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings on a private copy of the bundled models (a swap test rewrites its manifest)."""
    shutil.copytree(MODELS, tmp_path / "models")
    return Settings(model_dir=tmp_path / "models", publish_risk_scores=True)


def jobs_on(settings: Settings, state: MemoryState) -> dict:
    by_topic = build_jobs(
        settings, registry=ModelRegistry(settings.model_dir, ("forecast", "risk", "recommend")), state=state
    )
    return {job.slot: job for job in by_topic.values()}


def records(topic: str, values: list, partition: int = 0, first: int = 0) -> list[SourceRecord]:
    return [
        SourceRecord(topic, partition, first + n, None, v if isinstance(v, bytes) else orjson.dumps(v))
        for n, v in enumerate(values)
    ]


def process(job, batch):
    return asyncio.run(job.process(batch))


def by_topic(outputs, topic):
    return [o for o in outputs if o.topic == topic]


def sp500_ticks(n: int) -> list[dict]:
    from stream.tools.replay import to_epoch_ms

    with open(REPO_ROOT / "stream/data/sp500.csv") as f:
        rows = [r for _, r in zip(range(n), csv.DictReader(f))]
    return [{"v": 1, "symbol": "SPX", "ts": to_epoch_ms(r["Date"]), "price": float(r["Close"])} for r in rows]


def txn(n: int, account: str = "card-1", amount: float = 42.5) -> dict:
    return {
        "v": 1,
        "event_id": f"e{n}",
        "account_id": account,
        "ts": 1_700_000_000_000 + n * 60_000,
        "amount": amount + n,
        "currency": "USD",
        "merchant_category": "5411",
        "channel": "ecom",
        "country": "US",
        "product_code": "W",
        "card_type": "debit",
        "email_domain": "gmail.com",
    }


def user_event(n: int, user: str = "u1", action: str = "view") -> dict:
    return {
        "v": 1,
        "user_id": user,
        "ts": 1_700_000_000_000 + n * 1000,
        "product_id": PRODUCT_IDS[n % len(PRODUCT_IDS)],
        "action": action,
    }


def swap_default(settings: Settings, slots: list[str], name: str) -> None:
    path = settings.model_dir / "manifest.json"
    m = json.loads(path.read_text())
    for slot in slots:
        m["defaults"][slot] = name
    path.write_text(json.dumps(m, indent=2) + "\n")


# --- forecast ---------------------------------------------------------------------------------


def test_forecast_warms_up_then_forecasts_each_closed_bar(settings):
    job = jobs_on(settings, MemoryState())["forecast"]
    window = job.models["forecast@1d"].card.inputs[0].shape[1] + 1  # closes a forecast needs
    out = process(job, records(settings.topic_ticks, sp500_ticks(window + 5)))
    forecasts = [orjson.loads(o.value) for o in by_topic(out, settings.topic_forecasts)]
    # tick k closes bar k-1: the first full window of closed daily bars comes with tick window+1
    assert len(forecasts) == 5 - 1 + 1 and job.counts["warming_up"] == window - 1
    assert forecasts[0]["source"]["offset"] == window and forecasts[0]["model"] == "forecast_lstm"
    assert all(f["band_95"][0] < f["predicted_return"] < f["band_95"][1] for f in forecasts)


def test_forecast_dead_letters_bad_ticks_and_keeps_going(settings):
    job = jobs_on(settings, MemoryState())["forecast"]
    ticks = sp500_ticks(3)
    bad = [
        b"{not json",
        orjson.dumps({**ticks[1], "price": -3.0}),
        orjson.dumps({**ticks[0], "ts": ticks[0]["ts"] // 1000}),
    ]
    out = process(job, records(settings.topic_ticks, [ticks[0], *bad, ticks[2]]))
    dead = [orjson.loads(o.value) for o in by_topic(out, settings.topic_dead_letters)]
    assert [d["source"]["offset"] for d in dead] == [1, 2, 3]
    assert all(d["reason"] for d in dead) and job.counts["ticks"] == 2


def test_forecast_redelivery_gives_the_same_outputs_and_state(settings):
    state = MemoryState()
    job = jobs_on(settings, state)["forecast"]
    batch = records(settings.topic_ticks, sp500_ticks(60))
    first = by_topic(process(job, batch[:25]) + process(job, batch[25:]), settings.topic_forecasts)
    stored = dict(state.data)
    again = by_topic(
        process(jobs_on(settings, state)["forecast"], batch), settings.topic_forecasts
    )  # new worker, one batch
    assert again == first and len(first) == 60 - 33
    assert state.data == stored  # nothing applied twice


def test_forecast_model_swap_between_batches(settings):
    job = jobs_on(settings, MemoryState())["forecast"]
    ticks = records(settings.topic_ticks, sp500_ticks(50))
    before = by_topic(process(job, ticks[:40]), settings.topic_forecasts)
    swap_default(settings, ["forecast", "forecast@1d"], "forecast_conv1d")
    out = process(job, ticks[40:])
    after = [orjson.loads(o.value) for o in by_topic(out, settings.topic_forecasts)]
    events = [orjson.loads(o.value) for o in by_topic(out, settings.topic_model_events)]
    assert {orjson.loads(o.value)["model"] for o in before} == {"forecast_lstm"}
    assert {f["model"] for f in after} == {"forecast_conv1d"} and len(after) == 10
    assert any(e["event"] == "model_loaded" and e["model"] == "forecast_conv1d" for e in events)


# --- risk -------------------------------------------------------------------------------------


def test_risk_scores_each_transaction_and_dead_letters_bad_ones(settings):
    job = jobs_on(settings, MemoryState())["risk"]
    values = [txn(0), {**txn(1), "amount": -5}, {**txn(2), "currency": "dollars"}, txn(3)]
    out = process(job, records(settings.topic_transactions, values))
    scores = [orjson.loads(o.value) for o in by_topic(out, settings.topic_risk_scores)]
    dead = [orjson.loads(o.value) for o in by_topic(out, settings.topic_dead_letters)]
    assert [s["event_id"] for s in scores] == ["e0", "e3"]
    assert all(0.0 <= s["risk_score"] <= 1.0 for s in scores)
    # reasons go with alerts only: a score at or above the threshold has them, one below has none
    assert all((len(s["reasons"]) > 0) == (s["risk_score"] >= s["threshold"]) for s in scores)
    assert [d["source"]["offset"] for d in dead] == [1, 2] and "amount" in dead[0]["reason"]


def test_risk_redelivery_gives_the_same_outputs_and_state(settings):
    state = MemoryState()
    job = jobs_on(settings, state)["risk"]
    batch = records(settings.topic_transactions, [txn(n, f"card-{n % 3}") for n in range(30)])
    first = process(job, batch)
    stored = dict(state.data)
    again = process(jobs_on(settings, state)["risk"], batch)
    assert [o for o in again if o.topic != settings.topic_model_events] == [
        o for o in first if o.topic != settings.topic_model_events
    ]
    assert state.data == stored and len(by_topic(first, settings.topic_risk_scores)) == 30


def test_risk_model_swap_between_batches(settings):
    job = jobs_on(settings, MemoryState())["risk"]
    process(job, records(settings.topic_transactions, [txn(0)]))
    swap_default(settings, ["risk"], "card_risk_logistic")
    out = process(job, records(settings.topic_transactions, [txn(1)], first=1))
    [score] = [orjson.loads(o.value) for o in by_topic(out, settings.topic_risk_scores)]
    assert score["model"] == "card_risk_logistic"


# --- recommend --------------------------------------------------------------------------------


def test_recommend_ranks_products_not_held_and_dead_letters_unknown_products(settings):
    job = jobs_on(settings, MemoryState())["recommend"]
    values = [user_event(0, action="buy"), {**user_event(1), "product_id": "spaceship"}, user_event(2)]
    out = process(job, records(settings.topic_user_events, values))
    recs = [orjson.loads(o.value) for o in by_topic(out, settings.topic_recommendations)]
    dead = [orjson.loads(o.value) for o in by_topic(out, settings.topic_dead_letters)]
    assert len(recs) == 2 and [d["source"]["offset"] for d in dead] == [1] and "product_id" in dead[0]["reason"]
    held = PRODUCT_IDS[0]
    assert recs[1]["holdings"] == [held] and held not in [i["product_id"] for i in recs[1]["items"]]
    assert len(recs[1]["items"]) == settings.recommend_k


def test_recommend_never_recommends_a_held_product_when_fewer_than_k_are_free(settings):
    job = jobs_on(settings, MemoryState())["recommend"]
    buys = [{**user_event(n, action="buy"), "product_id": p} for n, p in enumerate(PRODUCT_IDS[2:])]
    out = process(job, records(settings.topic_user_events, [*buys, user_event(len(buys))]))
    *_, last = [orjson.loads(o.value) for o in by_topic(out, settings.topic_recommendations)]
    assert [i["product_id"] for i in last["items"]] in (list(PRODUCT_IDS[:2]), list(PRODUCT_IDS[1::-1]))
    assert all(i["reason"] for i in last["items"]) and last["holdings"] == sorted(PRODUCT_IDS[2:])


def test_recommend_redelivery_gives_the_same_outputs_and_state(settings):
    state = MemoryState()
    job = jobs_on(settings, state)["recommend"]
    batch = records(settings.topic_user_events, [user_event(n, f"u{n % 4}") for n in range(40)])
    first = process(job, batch[:17]) + process(job, batch[17:])
    stored = dict(state.data)
    again = process(jobs_on(settings, state)["recommend"], batch)
    assert by_topic(again, settings.topic_recommendations) == by_topic(first, settings.topic_recommendations)
    assert state.data == stored


def test_recommend_keeps_a_merchant_category_with_spaces_and_the_next_batch_loads_it(settings):
    """A spend note is one token of the stored profile ("3s:fuel"): a category with a space once
    made the user's next load fail on every retry (a stuck partition); it is stored with '_' for
    each run of spaces, which a reason says as a space again."""
    job = jobs_on(settings, MemoryState())["recommend"]
    spend = {**user_event(3, action="spend"), "merchant_category": "gift  shop"}
    first = process(job, records(settings.topic_user_events, [spend]))
    later = process(job, records(settings.topic_user_events, [user_event(4), user_event(5, "u2")], first=1))
    recs = [orjson.loads(o.value) for o in by_topic(first + later, settings.topic_recommendations)]
    assert [r["source"]["offset"] for r in recs] == [0, 1, 2] and not by_topic(later, settings.topic_dead_letters)
    reasons = [i.get("reason", "") for r in recs[:2] for i in r["items"]]
    assert any("gift shop" in why for why in reasons), reasons
    assert recs[1]["recent"] == [spend["product_id"], user_event(4)["product_id"]]


def test_recommend_model_swap_between_batches(settings):
    job = jobs_on(settings, MemoryState())["recommend"]
    process(job, records(settings.topic_user_events, [user_event(0)]))
    swap_default(settings, ["recommend"], "rec_item_cf")
    out = process(job, records(settings.topic_user_events, [user_event(1)], first=1))
    [rec] = [orjson.loads(o.value) for o in by_topic(out, settings.topic_recommendations)]
    assert rec["model"] == "rec_item_cf"


def test_redelivery_of_a_long_uncommitted_stretch_with_the_committed_offset_known(settings):
    """More records of one entity than ``SNAPSHOTS_KEPT`` since the last commit: with the committed
    offset from the delivery layer (``Job.committed``) every one replays exactly; without it the
    oldest have no snapshot left and are dead-lettered rather than recomputed wrongly."""
    from stream.core.fencing import SNAPSHOTS_KEPT

    batch = records(settings.topic_ticks, sp500_ticks(SNAPSHOTS_KEPT + 40))
    for committed, gaps in ((0, 0), (None, SNAPSHOTS_KEPT + 40 - SNAPSHOTS_KEPT)):
        state = MemoryState()
        job = jobs_on(settings, state)["forecast"]
        job.committed = lambda topic, partition, c=committed: c
        first = by_topic(process(job, batch), settings.topic_forecasts)
        again = jobs_on(settings, state)["forecast"]
        again.committed = job.committed
        out = process(again, batch)
        replayed = {o.key for o in by_topic(out, settings.topic_forecasts)}
        dead = by_topic(out, settings.topic_dead_letters)
        assert len(dead) == gaps and all(b"cannot reproduce" in d.value for d in dead)
        assert replayed == {o.key for o in first} - {d.key for d in dead}
        if committed is not None:
            assert by_topic(out, settings.topic_forecasts) == first  # byte for byte
