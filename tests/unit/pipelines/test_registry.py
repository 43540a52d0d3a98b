"""The pipelines are declared once: everything that lists them reads the registry.

A fourth pipeline (``echo``: its own topics, contract, state kind and model slot) registered for
the duration of a test must show up in the worker's wiring, the manifest slots the worker loads,
``finstream replay``'s kinds and topics, the topics the stack creates, ``finstream train``'s job
list and slot checks, and the report order; and disappear again afterwards.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import orjson
import pytest

from stream import pipelines, worker
from stream.core.contracts import ContractError, parse_user_event
from stream.core.records import OutputRecord, SourceRecord, output
from stream.serving.base import Job
from stream.settings import REPO_ROOT, Settings
from stream.tools import replay
from training import pipeline as training_pipeline
from training import report
from training.job import JobResult


class EchoJob(Job):
    """A do-nothing use case: each valid event comes back on ``echo-out``."""

    slot = "echo"

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, parse_user_event)
        return out + [output(self.settings.topic_echo_out, rec, {"user_id": e.user_id}) for rec, e in events]


class EchoSettings(Settings):
    topic_echo: str = "echo"
    topic_echo_out: str = "echo-out"


ECHO = pipelines.Pipeline(
    name="echo",
    order=40,
    input=pipelines.InputContract(
        kind="echo-events",
        parse=parse_user_event,
        key="user_id",
        fields=("user_id", "ts", "product_id", "action"),
        numeric=(),
    ),
    input_topic="topic_echo",
    state=("echo",),
    served_tasks=frozenset({"recommend"}),
    trained_tasks=frozenset({"recommend"}),
    outputs=("topic_echo_out",),
    job=EchoJob,
    trainer="training.echo_does_not_exist",
)


@pytest.fixture
def echo():
    with pipelines.registered(ECHO) as p:
        yield p
    assert "echo" not in pipelines.names()


@pytest.fixture
def model_dir(tmp_path):
    """The committed models plus a default for the echo slot (any loadable model of its task)."""
    d = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "onnx_models", d)
    m = json.loads((d / "manifest.json").read_text())
    m["defaults"]["echo"] = m["defaults"]["recommend"]
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def test_the_shipped_pipelines_in_order():
    assert pipelines.names() == ("forecast", "risk", "recommend")
    assert pipelines.slots() == ("forecast", "risk", "recommend")
    assert [p.kind for p in pipelines.all_pipelines()] == ["ticks", "transactions", "user-events"]
    assert pipelines.by_slot("forecast@1h").name == "forecast"
    s = Settings()
    assert s.input_topics == tuple(p.topic(s) for p in pipelines.all_pipelines())


def test_worker_wiring_and_manifest_slots_derive_from_the_registry(echo, model_dir):
    s = EchoSettings(model_dir=model_dir)
    jobs = worker.build_jobs(s)  # builds its own ModelRegistry from the pipelines' slots
    assert {t: type(j).__name__ for t, j in jobs.items()} == {
        "ticks": "ForecastJob",
        "transactions": "RiskJob",
        "user-events": "RecommendJob",
        "echo": "EchoJob",
    }
    models = jobs["echo"].models
    assert "echo" in models.slots and models["echo"].name == models["recommend"].name
    assert "echo" in s.input_topics and "echo-out" in s.output_topics


def test_worker_refuses_a_pipeline_whose_slot_has_no_model(echo):
    from stream.core.manifest import ManifestError

    with pytest.raises(ManifestError, match="echo"):
        worker.build_jobs(EchoSettings())  # the committed manifest has no echo default


def test_the_registered_job_runs(echo, model_dir):
    job = worker.build_jobs(EchoSettings(model_dir=model_dir))["echo"]
    good = orjson.dumps({"v": 1, "user_id": "u1", "ts": 1_700_000_000_000, "product_id": "p", "action": "view"})
    out = asyncio.run(job.process([SourceRecord("echo", 0, 1, b"u1", good), SourceRecord("echo", 0, 2, b"u2", b"{")]))
    topics = [o.topic for o in out if o.topic != job.settings.topic_model_events]
    assert topics == ["dead-letters", "echo-out"]


def test_replay_kinds_and_topics_derive_from_the_registry(echo):
    s = EchoSettings()
    assert replay.kinds() == ("ticks", "transactions", "user-events", "echo-events")
    assert replay.topic_for(s, "echo-events") == "echo"
    mapping = replay.parse_mappings(["user_id=who"], "echo-events")
    [(key, value)] = list(
        replay.rows_to_records([{"who": "ann", "ts": "2024-01-02", "extra": "x"}], "echo-events", mapping, None)
    )
    assert key == b"ann" and orjson.loads(value) == {"v": 1, "user_id": "ann", "ts": 1_704_153_600_000}
    with pytest.raises(replay.ReplayError, match="no such field"):
        replay.parse_mappings(["price=p"], "echo-events")
    assert pipelines.PARSERS["echo-events"] is parse_user_event


def test_unknown_kinds_are_refused_with_the_registered_ones_named():
    with pytest.raises(replay.ReplayError, match="ticks, transactions, user-events"):
        replay.topic_for(Settings(), "trades")
    with pytest.raises(KeyError):
        pipelines.PARSERS["trades"]


def test_training_jobs_slots_and_report_order_derive_from_the_registry(echo, tmp_path):
    with pytest.raises(training_pipeline.TrainingError, match="training.echo_does_not_exist"):
        training_pipeline.main(only=["echo"], out=tmp_path)
    existing = training_pipeline.read_manifest(REPO_ROOT / "onnx_models")
    rec = existing.default("recommend")
    merged, _ = training_pipeline.merge_manifest(existing, {"echo": JobResult([], {"echo": rec.name}, "")}, tmp_path)
    assert merged.defaults["echo"] == rec.name
    with pytest.raises(training_pipeline.TrainingError, match="task"):
        forecaster = existing.default("forecast").name
        training_pipeline.merge_manifest(existing, {"echo": JobResult([], {"echo": forecaster}, "")}, tmp_path)
    results = {j: JobResult([], {}, f"## {j}\n") for j in ("echo", "recommend", "forecast")}
    report.write_reports(tmp_path, results, {}, {})
    assert list(json.loads((tmp_path / "models.json").read_text())["jobs"]) == ["forecast", "recommend", "echo"]


def test_a_pipeline_must_not_clash_with_another():
    clash = pipelines.Pipeline(**{**ECHO.__dict__, "name": "echo2", "input_topic": "topic_ticks"})
    with pytest.raises(ValueError, match="input topic"):
        pipelines.register(clash)
    assert "echo2" not in pipelines.names()


def test_contract_errors_stay_contract_errors(echo):
    with pytest.raises(ContractError):
        pipelines.PARSERS["echo-events"]({"v": 1})


def test_declarations_agree_with_the_code_they_name():
    """Each pipeline's key and replay fields are fields of the event its parser returns, its outputs
    and input are Settings topics, and every state kind it keeps has a retention."""
    s = Settings()
    retention = s.state_retention_ms()
    for p in pipelines.all_pipelines():
        event_fields = set(_event_type(p).__slots__)
        assert p.input.key in p.input.fields and set(p.input.fields) <= event_fields, p.name
        assert set(p.input.numeric) <= set(p.input.fields), p.name
        assert all(isinstance(getattr(s, f), str) for f in (p.input_topic, *p.outputs, *p.feeds)), p.name
        assert set(p.state) <= set(retention), (p.name, p.state)
        assert p.served_tasks <= p.trained_tasks, p.name


def _event_type(p):
    import typing

    return typing.get_type_hints(p.input.parse)["return"]
