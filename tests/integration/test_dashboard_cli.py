"""`finstream dashboard` on its own: serves its page with no external script or style, reads an
output topic (today's forecast shape and the per-bar one) and says when the worker is unreachable."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import orjson

from stream.settings import REPO_ROOT
from stream.stack.procs import free_ports, stop_group
from tests.integration.workers import produce


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        return r.read()


def test_dashboard_cli_serves_offline_page_and_reads_outputs(stack, unique_topic, tmp_path):
    port, dead_port = free_ports(2)
    topic = unique_topic("forecasts")
    env = {
        **os.environ,
        "FINSTREAM_TOPIC_FORECASTS": topic,
        "FINSTREAM_WORKER_METRICS_URL": f"http://127.0.0.1:{dead_port}/metrics",
    }
    log = tmp_path / "dashboard.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "dashboard", "--port", str(port), "--from-beginning"],
        env=env,
        cwd=REPO_ROOT,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while f"dashboard: {base}/" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        page = fetch(base + "/").decode()
        refs = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert refs and all(r.startswith("/static/") for r in refs), refs  # nothing from a CDN
        for r in refs:
            assert len(fetch(base + r)) > 500
        produce(
            stack,
            topic,
            [
                (
                    "k1",
                    {
                        "symbol": "OLD",
                        "ts": 1_700_000_000_000,
                        "horizon": 1,
                        "last_price": 10.0,
                        "predicted_return": 0.01,
                        "predicted_volatility": 0.01,
                        "band_95": [-0.02, 0.04],
                        "model": "m",
                        "model_version": "1",
                    },
                ),
                (
                    "k2",
                    {
                        "symbol": "BAR",
                        "close_ts": 1_700_000_060_000,
                        "bar_s": 60,
                        "horizon_s": 300,
                        "close": 20.0,
                        "predicted_return": 0.0,
                        "predicted_volatility": 0.01,
                        "band": {"lo": -0.05, "hi": 0.05},
                        "model": "m2",
                        "model_version": "2",
                    },
                ),
            ],
        )
        deadline = time.monotonic() + 60
        while True:
            state = orjson.loads(fetch(base + "/api/state"))
            if len(state["forecasts"]) == 2 and state["metrics"]["worker"].startswith("unreachable"):
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
        assert state["forecasts"]["BAR"]["horizon"] == "next 5 minutes"
        assert state["forecasts"]["BAR"]["lo"] == 19.0 and state["forecasts"]["OLD"]["hi"] == 10.4
    finally:
        stop_group(proc, signal.SIGINT, timeout=20)
