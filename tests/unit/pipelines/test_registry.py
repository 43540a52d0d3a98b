"""The pipelines are declared once: everything that lists them reads the registry.

A fourth pipeline (``echo``: its own topics, contract, state kind, model slot, task and load)
registered for the duration of a test must show up in the worker's wiring, the manifest slots the
worker loads and the tasks a card may have, ``finstream replay``'s kinds and topics, the topics
the stack creates and their ``FINSTREAM_TOPIC_*`` names, ``finstream train``'s job list and slot
checks, the report order, and ``finstream bench``'s scenarios, load, worker topics and summary;
and disappear again afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil

import orjson
import pytest

from stream import pipelines, worker
from stream.core.contracts import ContractError, parse_user_event
from stream.core.records import SourceRecord
from stream.settings import REPO_ROOT, Settings
from stream.tools import replay
from tests.unit.pipelines.echo import ECHO, EchoJob
from training import pipeline as training_pipeline
from training import report
from training.job import JobResult


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
    s = Settings(model_dir=model_dir)
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
        worker.build_jobs(Settings())  # the committed manifest has no echo default


def test_the_registered_job_runs(echo, model_dir):
    job = worker.build_jobs(Settings(model_dir=model_dir))["echo"]
    good = orjson.dumps({"v": 1, "user_id": "u1", "ts": 1_700_000_000_000, "product_id": "p", "action": "view"})
    out = asyncio.run(job.process([SourceRecord("echo", 0, 1, b"u1", good), SourceRecord("echo", 0, 2, b"u2", b"{")]))
    topics = [o.topic for o in out if o.topic != job.settings.topic_model_events]
    assert topics == ["dead-letters", "echo-out"]


def test_replay_kinds_and_topics_derive_from_the_registry(echo):
    s = Settings()
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
    clash = pipelines.Pipeline(**{**ECHO.__dict__, "name": "echo2", "input_topic": "ticks"})
    with pytest.raises(ValueError, match="input topic"):
        pipelines.register(clash)
    assert "echo2" not in pipelines.names()


def test_a_pipeline_watches_one_of_its_own_outputs():
    with pytest.raises(ValueError, match="not one of its outputs"):
        pipelines.Pipeline(**{**ECHO.__dict__, "watched": "risk-alerts"})
    assert pipelines.Pipeline(**{**ECHO.__dict__, "watched": "echo-side"}).watched == "echo-side"


def test_contract_errors_stay_contract_errors(echo):
    with pytest.raises(ContractError):
        pipelines.PARSERS["echo-events"]({"v": 1})


def test_declarations_agree_with_the_code_they_name():
    """Each pipeline's key and replay fields are fields of the event its parser returns, its outputs
    and input are Settings topics, and every state kind it keeps has a retention."""
    s = Settings()
    retention = s.state_retention_ms()
    for p in pipelines.all_pipelines():
        event_fields = {f.name for f in dataclasses.fields(_event_type(p))}
        assert p.input.key in p.input.fields and set(p.input.fields) <= event_fields, p.name
        assert set(p.input.numeric) <= set(p.input.fields), p.name
        assert all(isinstance(s.topic(t), str) for t in p.topics), p.name
        assert set(p.state) <= set(retention), (p.name, p.state)
        assert p.served_tasks <= p.trained_tasks, p.name


def _event_type(p):
    import typing

    return typing.get_type_hints(p.input.parse)["return"]


def test_topic_names_and_their_env_vars_derive_from_the_declarations(echo, monkeypatch):
    """A new pipeline's topics need no Settings field: FINSTREAM_TOPIC_<NAME> renames them."""
    from stream.settings import settings_from_env, topic_env

    s = Settings()
    assert (s.topic_echo, s.topic_echo_out, s.topic("echo-side")) == ("echo", "echo-out", "echo-side")
    monkeypatch.setenv("FINSTREAM_TOPIC_ECHO_OUT", "echo-out-v2")
    s = Settings(topic_echo="echo-v2")  # an argument, like a field
    assert (s.topic_echo, s.topic_echo_out) == ("echo-v2", "echo-out-v2")
    assert s.input_topics[-1] == "echo-v2" and {"echo-out-v2", "echo-side"} <= set(s.output_topics)
    assert s.model_copy(update={"batch_max": 7}).topic_echo == "echo-v2"
    assert "topic_echo" not in s.model_dump() and s == Settings(topic_echo="echo-v2")  # read, not a field
    env = topic_env(lambda t: f"private-{t}")
    assert env["FINSTREAM_TOPIC_ECHO"] == "private-echo" and env["FINSTREAM_TOPIC_ECHO_SIDE"] == "private-echo-side"
    assert (
        env["FINSTREAM_TOPIC_TICKS"] == "private-ticks"
        and env["FINSTREAM_TOPIC_DEAD_LETTERS"] == "private-dead-letters"
    )
    assert settings_from_env(env).topic_echo_out == "private-echo-out"


def test_topics_of_an_unregistered_pipeline_are_unknown():
    with pytest.raises(AttributeError, match="topic_echo"):
        Settings().topic_echo  # noqa: B018
    assert "FINSTREAM_TOPIC_ECHO" not in __import__("stream.settings").settings.topic_env(str)


def test_the_manifest_vocabulary_is_the_pipelines_tasks(echo):
    from stream.core.manifest import ManifestError, ModelCard

    card = ModelCard.from_dict(_card("echo_score")).to_dict()
    assert "echo_score" in pipelines.tasks() and ModelCard.from_dict(card).task == "echo_score"
    with pytest.raises(ManifestError, match="unknown task 'echo_scores'"):
        ModelCard.from_dict(_card("echo_scores"))
    pipelines._REGISTRY.pop("echo")  # as the fixture will: the task leaves with its pipeline
    try:
        with pytest.raises(ManifestError, match="unknown task 'echo_score'"):
            ModelCard.from_dict(card)
    finally:
        pipelines.register(ECHO)


def _card(task: str) -> dict:
    return {
        "name": "echo-model",
        "task": task,
        "family": "linear",
        "version": "1",
        "file": "echo.onnx",
        "sha256": "0" * 64,
        "opset": 17,
        "inputs": [{"name": "x", "shape": [None, 1]}],
        "outputs": [{"name": "y", "shape": [None, 1]}],
    }


def test_bench_scenarios_load_and_worker_topics_derive_from_the_registry(echo, model_dir):
    from stream.tools import bench, bench_load, bench_specs
    from stream.tools.bench_env import served_models
    from stream.tools.bench_report import summarise

    assert {"engine-echo", "naive-echo", "worker-echo"} <= set(bench.scenarios())
    assert bench.selected("worker")[-1] == "worker-echo" and bench.selected("engine-echo") == ["engine-echo"]
    s = Settings(model_dir=model_dir)
    records = bench_load.make_events("echo", 5)
    assert len(records) == 5 and all(parse_user_event(orjson.loads(v)).user_id == k.decode() for k, v in records)
    warm, expected = bench_load.warmup_events("echo", s)
    assert len(warm) == expected == 100 and bench_load.silent("echo", records, s) == 0

    spec = bench_specs.worker_spec(s, "echo")  # its own renamed topics: main output + dead letters, the rest beside
    ws = spec.settings
    assert spec.src_topic == ws.topic_echo != "echo" and spec.src_topic.startswith("bench-echo-")
    assert spec.done_topics == [ws.topic_echo_out, ws.topic_dead_letters] and spec.extra_topics == [ws.topic_echo_side]
    assert spec.env["FINSTREAM_TOPIC_ECHO"] == ws.topic_echo

    assert served_models(model_dir)["echo"]["name"] == served_models(model_dir)["recommend"]["name"]
    assert bench.skip_reason("worker-echo", served_models(REPO_ROOT / "onnx_models"))[1].endswith("['echo']")
    assert bench.skip_reason("engine-echo", served_models(model_dir)) is None
    ok = [{"name": n, "status": "ok", "throughput": eps} for n, eps in (("engine-echo", 4e3), ("worker-echo", 1e3))]
    assert summarise(ok)["worker_echo"]["engine_over_worker"] == 4.0


def test_a_pipeline_without_a_load_module_is_a_clear_bench_error(echo):
    import dataclasses

    from stream.tools import bench_load

    bare = dataclasses.replace(
        ECHO,
        name="bare",
        order=50,
        input=dataclasses.replace(ECHO.input, kind="bare-events"),
        input_topic="bare",
        job=type("BareJob", (EchoJob,), {"slot": "bare"}),
        load="",
    )
    with pipelines.registered(bare), pytest.raises(ValueError, match="'bare' declares no load module"):
        bench_load.make_events("bare", 3)


def test_each_pipelines_load_is_valid_input_keyed_by_its_key():
    """What the bench feeds a pipeline (the load module it names) parses with its contract, keyed
    by its key field, and its warm-up gives as many outputs as the bench will wait for."""
    from stream.tools import bench_load

    s = Settings()
    for p in pipelines.all_pipelines():
        records = bench_load.make_events(p.name, 300)
        events = [p.input.parse(orjson.loads(v)) for _, v in records]
        assert len(events) == 300, p.name
        assert all(k.decode() == str(getattr(e, p.input.key)) for (k, _), e in zip(records, events)), p.name
        warm, expected = bench_load.warmup_events(p.name, s)
        assert 0 < expected <= len(warm), p.name
