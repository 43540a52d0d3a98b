"""README promises about the jobs, driven the way the worker drives them (``build_jobs`` on the real
Redis of the session stack, batches of source records, real models), without a Kafka round trip:

* a redelivered tick gets its original forecast back, byte for byte;
* a redelivered transaction whose snapshot is gone is dead-lettered (ReplayGap), not recomputed;
* a dead letter carries its source position (topic, partition, offset) in its body and key;
* a model that does not load, or whose inputs do not match the manifest, is refused with a
  ``model-events`` record while the previous version keeps serving;
* the risk job raises ``feature_drift`` events when the live features leave the training range.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil

import orjson
import pytest
import redis.asyncio as aioredis

from stream.core.manifest import read_manifest, sha256_file
from stream.core.records import SourceRecord
from stream.settings import REPO_ROOT, settings_from_env
from stream.tools.replay import read_csv, rows_to_records
from stream.worker import build_jobs

MODELS = REPO_ROOT / "onnx_models"
SP500 = REPO_ROOT / "stream" / "data" / "sp500.csv"


def jobs_for(stack, prefix: str, **env):
    """Settings and jobs as the worker builds them; call inside the test's one event loop."""
    s = settings_from_env(
        {
            **os.environ,
            "FINSTREAM_REDIS_KEY_PREFIX": prefix,
            "FINSTREAM_MODEL_DIR": str(MODELS),
            **{k: str(v) for k, v in env.items()},
        }
    )
    return s, build_jobs(s, aioredis.from_url(stack.redis_url.get_secret_value()))


def records(topic: str, partition: int, values, start: int = 0) -> list[SourceRecord]:
    return [SourceRecord(topic, partition, start + i, k, v) for i, (k, v) in enumerate(values)]


def ticks(n: int) -> list[tuple[bytes, bytes]]:
    return list(rows_to_records(list(read_csv(SP500))[:n], "ticks", {"ts": "Date", "price": "Close"}, "SPX"))


def txn(account: str, i: int, amount: float = 25.0, **kw) -> tuple[bytes, bytes]:
    t = {
        "v": 1,
        "event_id": f"e-{account}-{i}",
        "account_id": account,
        "ts": 1_704_067_200_000 + i * 60_000,
        "amount": amount,
        "currency": "EUR",
        "merchant_category": "grocery",
        "channel": "pos",
        "country": "DE",
        **kw,
    }
    return account.encode(), orjson.dumps(t)


def on(outs, topic):
    return [o for o in outs if o.topic == topic]


def test_a_redelivered_tick_gets_its_original_forecast_back(stack, redis_prefix):
    """Forecasts come from fenced bar state: a tick delivered again (after a crash) changes
    nothing and gets the very bytes it produced the first time."""

    async def body():
        s, jobs = jobs_for(stack, redis_prefix)
        job = jobs[s.topic_ticks]
        recs = records(s.topic_ticks, 0, ticks(120))
        forecasts = {o.key: o.value for o in on(await job.process(recs), s.topic_forecasts)}
        assert forecasts, "120 daily closes must fill a window"
        last = max(forecasts, key=lambda k: int(k.decode().rsplit(":", 1)[1]))
        rec = next(r for r in recs if r.source_id.encode() == last)
        again = [o for o in await job.process([rec]) if o.topic != s.topic_model_events]
        assert [(o.topic, o.key, o.value) for o in again] == [(s.topic_forecasts, last, forecasts[last])]

    asyncio.run(body())


def test_redelivery_beyond_the_snapshots_is_a_dead_letter_with_its_source_position(stack, redis_prefix):
    async def body():
        s, jobs = jobs_for(stack, redis_prefix, FINSTREAM_PUBLISH_RISK_SCORES="true")
        job = jobs[s.topic_transactions]
        # Output snapshots are dropped once no redelivery can need them (below the partition's
        # committed offset, as the delivery layer reports it; or beyond a fixed count per entity):
        # 70 records with all but the last 6 committed lose the oldest snapshots either way.
        n = 70
        job.committed = lambda topic, partition: 100 + n - 6
        recs = records(s.topic_transactions, 1, [txn("acct-1", i) for i in range(n)], start=100)
        first = await job.process(recs)
        scores = {o.key: o.value for o in on(first, s.topic_risk_scores)}
        assert len(scores) == len(recs)
        out = await job.process([recs[0], recs[-1]])
        dead = on(out, s.topic_dead_letters)
        assert len(dead) == 1, out
        letter = orjson.loads(dead[0].value)
        assert "cannot reproduce a redelivered record" in letter["reason"]
        assert letter["source"] == {"topic": s.topic_transactions, "partition": 1, "offset": 100}
        assert dead[0].key == f"{s.topic_transactions}:1:100".encode() and dead[0].partition == 1
        assert base64.b64decode(letter["original_b64"]) == recs[0].value
        # the recent one is still within the snapshots: its original score, byte for byte
        assert [o.value for o in on(out, s.topic_risk_scores)] == [scores[recs[-1].source_id.encode()]]

    asyncio.run(body())


def test_bad_record_dead_letter_names_its_source_position(stack, redis_prefix):
    async def body():
        s, jobs = jobs_for(stack, redis_prefix)
        [rec] = records(s.topic_transactions, 3, [(b"acct-9", b'{"v": 1, "amount": -3}')], start=41)
        [dead] = on(await jobs[s.topic_transactions].process([rec]), s.topic_dead_letters)
        letter = orjson.loads(dead.value)
        assert dead.topic == s.topic_dead_letters and dead.partition == 3
        assert letter["source"] == {"topic": s.topic_transactions, "partition": 3, "offset": 41}
        assert dead.key == f"{s.topic_transactions}:3:41".encode() and letter["reason"]

    asyncio.run(body())


def swap_manifest(models, edit) -> None:
    manifest = json.loads((models / "manifest.json").read_text())
    edit(manifest)
    (models / "manifest.json.tmp").write_text(json.dumps(manifest))
    (models / "manifest.json.tmp").replace(models / "manifest.json")


@pytest.mark.parametrize("breakage", ["unloadable", "inputs"])
def test_a_model_that_does_not_load_or_fit_is_refused_with_a_model_event(stack, redis_prefix, tmp_path, breakage):
    async def body():
        models = tmp_path / "models"
        shutil.copytree(MODELS, models)
        s, jobs = jobs_for(stack, redis_prefix, FINSTREAM_MODEL_DIR=models, FINSTREAM_PUBLISH_RISK_SCORES="true")
        job = jobs[s.topic_transactions]
        card = read_manifest(models).default("risk")
        await job.process(records(s.topic_transactions, 0, [txn("a", 0)]))  # serving v1 (its load event)

        def edit(m):
            entry = m["models"][card.name]
            entry["version"] = "2"
            if breakage == "unloadable":  # right checksum, but not an ONNX graph
                bad = models / "broken.onnx"
                bad.write_bytes(b"not an onnx graph at all")
                entry["file"], entry["sha256"] = bad.name, sha256_file(bad)
            else:  # the graph loads, but takes another input than the manifest says
                entry["inputs"][0]["name"] = "not_the_input"

        swap_manifest(models, edit)
        out = await job.process(records(s.topic_transactions, 0, [txn("a", 1)], start=1))
        events = [orjson.loads(o.value) for o in on(out, s.topic_model_events)]
        refused = [e for e in events if e["event"] == "model_refused"]
        assert len(refused) >= 1, events
        why = {"unloadable": "could not load", "inputs": "do not match the manifest"}[breakage]
        assert why in refused[0]["reason"] and refused[0]["version"] == "2"
        assert refused[0]["still_serving"] == {"model": card.name, "version": card.version}
        [score] = [orjson.loads(o.value) for o in on(out, s.topic_risk_scores)]
        assert score["model_version"] == card.version

    asyncio.run(body())


def test_risk_job_raises_feature_drift_events(stack, redis_prefix):
    async def body():
        s, jobs = jobs_for(stack, redis_prefix, FINSTREAM_DRIFT_WINDOW=100)
        job = jobs[s.topic_transactions]
        # one account spending huge sums in a new country every few seconds, all night: far from training
        values = [
            txn(
                "drifter",
                i,
                amount=50_000.0 + i,
                country=["NG", "KP", "IR", "BY"][i % 4],
                channel="atm",
                merchant_category="crypto",
            )
            for i in range(100)
        ]
        out = await job.process(records(s.topic_transactions, 0, values))
        drift = [
            orjson.loads(o.value)
            for o in on(out, s.topic_model_events)
            if orjson.loads(o.value)["event"] == "feature_drift"
        ]
        card = read_manifest(MODELS).default("risk")
        assert drift, "a population this far from training must raise feature_drift"
        for d in drift:
            assert d["slot"] == "risk" and d["model"] == card.name and d["version"] == card.version
            assert d["feature"] in card.features and d["psi"] > 0.2 and d["rows"] == 100
        assert job.counts["drift_alerts"] == len(drift)

    asyncio.run(body())
