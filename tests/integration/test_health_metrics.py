"""/health, /ready and /metrics of a real worker, against a Kafka and Redis this test owns.

The test starts its own private stack (not the session one) because it stops and restarts the
servers: /ready must turn false within seconds of losing Redis, then Kafka, and come back by
itself when they return. Before that, /metrics must show what the worker did with real events.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.settings import Settings, settings_from_env
from stream.stack import kafka, manager, redis_server
from stream.stack.procs import free_ports, read_pid, stop_pid
from stream.tools.bench_load import make_events
from tests.integration.workers import WorkerRun, produce

OUTAGE_S = 15.0  # ready must flip within this (the probe runs every second, each check ≤ 2 s)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def wait_for(what: str, cond, timeout: float, worker: WorkerRun):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        assert worker.proc.poll() is None, f"worker exited while waiting for {what}:\n{worker.log_text()[-3000:]}"
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{worker.log_text()[-3000:]}")


def samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.fixture
def own_stack(tmp_path) -> Settings:
    kafka_port, ctrl_port, redis_port = free_ports(3)
    s = settings_from_env(
        {
            "FINSTREAM_HOME": str(Settings().home),
            "FINSTREAM_STACK_DIR": str(tmp_path / "stack"),
            "FINSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
            "FINSTREAM_KAFKA_CONTROLLER_PORT": str(ctrl_port),
            "FINSTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
    )
    manager.start(s, tie_to_parent=True, topics=False)
    try:
        yield s
    finally:
        manager.stop(s)


def stop(component, s: Settings) -> None:
    pid = read_pid(component.pid_file(s), component.marker(s))
    assert pid is not None, f"{component.NAME} of this test is not running"
    stop_pid(pid, timeout=20.0)


@pytest.mark.integration
def test_metrics_then_ready_follows_redis_and_kafka_outages(own_stack, tmp_path):
    s = own_stack
    (web_port,) = free_ports(1)
    env = {
        "FINSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "FINSTREAM_KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
        "FINSTREAM_REDIS_URL": s.redis_url.get_secret_value(),
        "FINSTREAM_STACK_DIR": str(s.stack_path),
        "FINSTREAM_WORKER_WEB_ENABLED": "true",
        "FINSTREAM_WORKER_WEB_PORT": str(web_port),
        "FINSTREAM_HEALTH_PROBE_S": "1.0",
    }
    w = WorkerRun(s, tmp_path, **env)
    base = f"http://127.0.0.1:{web_port}"
    try:
        w.start()
        assert wait_for("/health", lambda: get(base + "/health")[0] == 200, 90, w)
        wait_for("/ready 200", lambda: get(base + "/ready")[0] == 200, 90, w)

        # --- metrics: real events through every job ------------------------------------------------
        ws = w.settings
        produce(ws, ws.topic_ticks, make_events("forecast", 400) + [(b"X", b"not json")])
        produce(ws, ws.topic_transactions, make_events("risk", 200))
        produce(ws, ws.topic_user_events, make_events("recommend", 100))

        def done():
            m = samples(get(base + "/metrics")[1].decode())
            events = sum(v for (n, _), v in m.items() if n == "finstream_events_total")
            return m if events >= 701 else None

        m = wait_for("all events counted in /metrics", done, 90, w)
        assert m[("finstream_events_total", (("slot", "forecast"), ("topic", ws.topic_ticks)))] == 401
        assert (
            m[
                (
                    "finstream_dead_letters_total",
                    (("reason", "not valid JSON"), ("slot", "forecast"), ("topic", ws.topic_ticks)),
                )
            ]
            == 1
        )
        assert m[("finstream_outputs_total", (("slot", "risk"), ("topic", ws.topic_risk_scores)))] == 200
        assert m[("finstream_outputs_total", (("slot", "recommend"), ("topic", ws.topic_recommendations)))] > 0
        assert m[("finstream_end_to_end_latency_seconds_count", (("slot", "risk"),))] == 200
        for stage in ("parse", "redis", "onnxruntime", "python", "publish", "commit"):
            assert m[("finstream_stage_seconds_count", (("slot", "risk"), ("stage", stage)))] >= 1, stage
        assert m[("finstream_partitions_assigned", ())] == 3 * 2
        models = {dict(k)["slot"]: dict(k) for (n, k), _ in m.items() if n == "finstream_model_info"}
        # the registry's slots, plus the per-interval forecaster the default 1d bars are served by
        assert set(models) == {"forecast", "forecast@1d", "risk", "recommend"} and all(
            len(v["sha256"]) == 64 for v in models.values()
        )
        lags = [v for (n, _), v in m.items() if n == "finstream_consumer_lag_messages"]
        assert lags and all(v >= 0 for v in lags)
        assert m[("finstream_ready", ())] == 1

        # --- readiness follows the servers, both ways ---------------------------------------------
        for component, name in ((redis_server, "redis"), (kafka, "kafka")):
            stop(component, s)
            t0 = time.monotonic()
            status, body = wait_for(
                f"/ready 503 after stopping {name}", lambda: (r := get(base + "/ready"))[0] == 503 and r, OUTAGE_S, w
            )
            took = time.monotonic() - t0
            view = orjson.loads(body)["components"]
            assert view[name]["ok"] is False, view
            print(f"{name} down -> not ready after {took:.1f}s: {view[name]['detail']}")
            manager.start(s, tie_to_parent=True, topics=False)  # starts only what is missing
            t0 = time.monotonic()
            wait_for(f"/ready 200 after restarting {name}", lambda: get(base + "/ready")[0] == 200, 60, w)
            print(f"{name} back -> ready after {time.monotonic() - t0:.1f}s")
        assert get(base + "/health")[0] == 200
    finally:
        w.stop()
