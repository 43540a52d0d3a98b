"""``finstream bench`` end to end on the session stack, with tiny event counts.

Checks shape and bookkeeping only (every scenario ran, every input event is accounted for, the
table printed) and the costs the README promises per batch (Redis round trips, one onnxruntime
call), never speed: timing goals live in the benchmark itself, not in tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stream.settings import REPO_ROOT
from stream.tools.bench import scenarios
from stream.tools.bench_engine import SMALL_BATCH, SMALL_SAMPLE
from stream.tools.bench_env import served_models
from stream.tools.bench_onnx import ONNX_BATCHES

EVENTS = 300
# Redis round trips per batch the README promises: one load and one save pipeline per batch for every job
# (forecast: fenced bar entities since time bars).
ROUND_TRIPS = {"forecast": 2, "risk": 2, "recommend": 2}


@pytest.fixture(scope="module")
def bench_run(stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FINSTREAM_BENCH_ONLY", None)
    env["FINSTREAM_BENCH_BROKER_WARMUP_S"] = "1"  # one short warm-up run: the code path, not its 30 s
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "bench", "--out", str(out), "--events", str(EVENTS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    files = sorted(out.glob("bench-*.json"))
    report = json.loads(files[-1].read_text()) if files else None
    return done, report, files, stack


@pytest.mark.timeout(260)
def test_bench_writes_every_scenario_and_accounts_for_every_event(bench_run):
    done, report, files, stack = bench_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert len(files) == 1
    assert report["events"] == EVENTS
    assert report["stack"] == "external"  # used the session stack, did not start its own
    assert report["settings"]["kafka_bootstrap"] == stack.kafka_bootstrap
    assert "synthetic" in report["data"].lower()
    for key in ("cores", "python", "onnxruntime", "faust_streaming", "aiokafka"):
        assert report["machine"][key], key

    models = served_models(stack.model_dir)
    by_name = {sc["name"]: sc for sc in report["scenarios"]}
    assert list(by_name) == list(scenarios())
    for name, sc in by_name.items():
        assert sc["status"] == "ok", (name, sc.get("reason"), sc.get("traceback"))
        assert sc["throughput"] > 0, name
        if sc["kind"] == "onnx":
            assert {(r["slot"], r["batch"]) for r in sc["results"]} == {(m, b) for m in models for b in ONNX_BATCHES}
            assert all(r["rows_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 for r in sc["results"])
            continue
        c = sc["counts"]
        assert c["inputs"] == EVENTS, name
        assert c["outputs"] + c["dead_letters"] + c["warming_up"] == EVENTS, (name, c)
        assert c["accounted"], (name, c)
        assert c["outputs"] > 0, (name, c)
        assert sc["latency_ms"]["p50"] is not None and sc["latency_ms"]["p99"] >= sc["latency_ms"]["p50"], name
        if sc["kind"] in ("engine", "naive"):
            # exactly the promised round trips, and one onnxruntime call per batch (risk: a second one
            # for the occluded copies of a batch's alerts, reasons being given for alerts only);
            # naive-<job> runs batches of one event: per event its own round trips and model call
            job = name.split("-", 1)[1]
            assert sc["redis"]["round_trips_per_batch"] == ROUND_TRIPS[job], (name, sc["redis"])
            if job == "forecast":  # a batch whose ticks close no full window calls no model
                assert 1 <= sc["onnx"]["calls"] <= sc["batches"], (name, sc["onnx"], sc["batches"])
            elif job == "risk":
                assert sc["batches"] <= sc["onnx"]["calls"] <= 2 * sc["batches"], (name, sc["onnx"], sc["batches"])
            else:
                assert sc["onnx"]["calls"] == sc["batches"], (name, sc["onnx"], sc["batches"])
        else:
            assert c["duplicates"] == 0, (name, c)
            assert sc["startup_s"] > 0 and sc["rss_mb"]["hwm"] > 0, name
            assert sc["broker_warmup"]["events"] > 0, (name, sc["broker_warmup"])  # before the first scenario
        if sc["kind"] == "engine":  # also run at the paced load's batch size, with the same round trips
            sb, job = sc["small_batch"], name.split("-", 1)[1]
            assert sb["batch_max"] == SMALL_BATCH and sb["events"] == min(EVENTS, SMALL_SAMPLE), (name, sb)
            assert sb["throughput"] > 0 and sb["cpu_us_per_event"]["process"] > 0, (name, sb)
            assert sb["redis_round_trips_per_batch"] == ROUND_TRIPS[job], (name, sb)
        if sc["kind"] == "naive":
            assert sc["batch_max"] == 1 and sc["batches"] == EVENTS, (name, sc["batches"])
        if name.endswith("-forecast"):
            assert c["warming_up"] > 0, "fresh windows must warm up before the first forecast"


def test_bench_prints_the_table(bench_run):
    done, report, _, _ = bench_run
    assert "finstream bench:" in done.stdout
    for sc in report["scenarios"]:
        if sc["status"] == "ok":
            label = sc["name"] if sc["kind"] != "onnx" else "onnx forecast"
            assert label in done.stdout, label
