"""The risk job's remembered feature rows (dedupe and redelivery snapshots) as packed float32
(``stream.core.rows``), only their history part (``stream.core.cardbatch``): resent and
redelivered events get byte-identical outputs, also from a state written when rows were stored
as JSON floats or as whole rows (every feature, before the history part was split off)."""

from __future__ import annotations

import asyncio
import shutil

import orjson
import pytest

from stream.core.records import SourceRecord
from stream.serving import risk
from stream.serving.models import ModelRegistry
from stream.settings import REPO_ROOT, Settings
from stream.state.entities import log_entries, read_stored
from stream.state.memory import MemoryState
from stream.worker import build_jobs


@pytest.fixture
def settings(tmp_path) -> Settings:
    shutil.copytree(REPO_ROOT / "onnx_models", tmp_path / "models")
    return Settings(model_dir=tmp_path / "models", publish_risk_scores=True)


def risk_job(settings: Settings, state: MemoryState):
    jobs = build_jobs(settings, registry=ModelRegistry(settings.model_dir, ("risk",)), state=state)
    return next(j for j in jobs.values() if j.slot == "risk")


def txn(n: int, card: str) -> dict:
    return {
        "v": 1,
        "event_id": f"e{n}",
        "account_id": card,
        "ts": 1_700_000_000_000 + n * 45_000,
        "amount": 17.25 + 3.5 * n,
        "currency": "USD",
        "merchant_category": "W",
        "channel": "ecom",
        "country": "US",
        "product_code": "W" if n % 2 else "C",
        "email_domain": f"d{n % 3}.com",
        "signals": {"C1": float(n), "C13": 2.0 * n, "V13": 0.5, "id_13": 49.0},
    }


def batch(settings: Settings, values: list[dict], first: int = 0) -> list[SourceRecord]:
    t = settings.topic_transactions
    return [SourceRecord(t, 0, first + i, None, orjson.dumps(v)) for i, v in enumerate(values)]


def scored(settings: Settings, outs) -> list:
    return [o for o in outs if o.topic in (settings.topic_risk_scores, settings.topic_risk_alerts)]


def without_source(value: bytes) -> bytes:
    body = orjson.loads(value)
    del body["source"]
    return orjson.dumps(body)


def snapshots(fields: dict) -> dict:
    """A stored entity's output snapshots as values (its snapshot chunks: ``stream.state.entities``)."""
    return {k: v.value() for k, v in read_stored(fields).items()}


def run(job, records):
    return asyncio.run(job.process(records))


def test_stored_rows_are_packed_history_parts(settings):
    from stream.core.cardbatch import HISTORY_WIDTH
    from stream.core.rows import fits

    state = MemoryState()
    job = risk_job(settings, state)
    run(job, batch(settings, [txn(n, "card-1") for n in range(5)]))
    width = HISTORY_WIDTH
    assert width < len(job.models["risk"].card.features)
    [(_fence, blob, _exp, fields)] = state.data.values()
    stored = orjson.loads(blob)
    assert all(isinstance(row, str) and fits(row, width) for _eid, row in stored["s"]["seen"])
    snaps = snapshots(fields)
    assert len(snaps) == 5 and all(isinstance(out[0], str) and fits(out[0], width) for out in snaps.values())


def _whole_rows(tables, pack):
    """The card entry of a worker from before the history split: every feature remembered."""
    from stream.core.cardrisk import advance_card, card_features

    def step(t):
        return lambda st: (advance_card(st, t), pack(card_features(st, t, tables)))

    return (*risk._CARD[:3], step)


@pytest.mark.parametrize("written_as", ["packed", "floats", "whole_rows", "whole_rows_as_floats"])
def test_redelivered_and_resent_events_get_byte_identical_outputs(settings, monkeypatch, written_as):
    """First pass (history parts packed, or as float lists like states written before packing, or
    whole rows like states written before the split), then the same batch redelivered and the
    same events resent at new offsets, read by today's code."""
    from stream.core.cardbatch import HISTORY_WIDTH
    from stream.core.rows import fits

    values = [txn(n, f"card-{n % 2}") for n in range(12)]
    state = MemoryState()
    job = risk_job(settings, state)
    width, whole = len(job.models["risk"].card.features), written_as.startswith("whole")
    with monkeypatch.context() as m:
        if written_as in ("floats", "whole_rows_as_floats"):
            m.setattr(risk, "pack_row", lambda row: row)
        if whole:
            m.setattr(risk, "_CARD", _whole_rows(risk._card_tables(job.models["risk"]), risk.pack_row))
        first = scored(settings, run(job, batch(settings, values)))
    rows = [row for blob in state.data.values() for _, row in orjson.loads(blob[1])["s"]["seen"]]
    assert len(rows) == len(values) and all(fits(row, width if whole else HISTORY_WIDTH) for row in rows)
    if written_as in ("floats", "whole_rows_as_floats"):
        assert all(
            isinstance(row, list) for blob in state.data.values() for _, row in orjson.loads(blob[1])["s"]["seen"]
        )
    stored = dict(state.data)
    again = scored(settings, run(risk_job(settings, state), batch(settings, values)))
    assert again == first and state.data == stored  # redelivery: same keys, same bytes, state untouched
    job = risk_job(settings, state)
    resent = scored(settings, run(job, batch(settings, values, first=100)))
    # resent ids: the original answers, apart from the position they name
    assert [without_source(o.value) for o in resent] == [without_source(o.value) for o in first]
    assert {orjson.loads(o.value)["source"]["offset"] for o in resent} == set(range(100, 112))
    assert job.counts["repeated_event_ids"] == len(values) and job.counts["transactions"] == 0
    assert len(first) >= len(values)


def test_rows_remembered_under_another_feature_list_are_dead_lettered_not_a_failed_batch(settings):
    """State written while the served model read another number of features (a feature-list change
    between deploys): a redelivered or resent event cannot be answered as before, and says so."""
    from stream.core.rows import pack_row

    values = [txn(n, f"card-{n % 2}") for n in range(6)]
    state = MemoryState()
    first = risk_job(settings, state)
    run(first, batch(settings, values))
    width = len(first.models["risk"].card.features)
    for key, (fence, blob, expiry, fields) in list(state.data.items()):
        d = orjson.loads(blob)
        d["s"]["seen"] = [[eid, pack_row([0.5] * (width - 1))] for eid, _ in d["s"]["seen"]]
        snaps = {off: [pack_row([0.5] * (width - 1)), rep] for off, (_, rep) in snapshots(fields).items()}
        fields = {b"ix": b"1||0:%d:%d:%d;" % (min(snaps), max(snaps), len(snaps)), b"c0": log_entries(snaps)}
        state.data[key] = (fence, orjson.dumps(d), expiry, fields)
    job = risk_job(settings, state)
    redelivered = run(job, batch(settings, values))
    resent = run(job, batch(settings, values, first=100))
    for out in (redelivered, resent):
        dead = [orjson.loads(o.value) for o in out if o.topic == settings.topic_dead_letters]
        assert len(dead) == len(values) and not scored(settings, out)
        assert all("does not fit the served model's" in d["reason"] for d in dead)
    fresh = run(job, batch(settings, [txn(50, "card-0")], first=200))  # the card itself still scores
    assert len(scored(settings, fresh)) >= 1
