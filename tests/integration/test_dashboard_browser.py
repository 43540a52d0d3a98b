"""The dashboard as a person sees it: `finstream demo` (stack, worker, feeds, dashboard) opened in
a real headless Chromium (Debian's chromium + chromium-driver, installed by `finstream stack install`).

Fails if the page loads but no forecasts, alerts, recommendations or worker figures arrive, or if
the counters stop growing. The screenshot is kept in the test's temp directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from stream.settings import REPO_ROOT
from stream.stack.procs import free_ports, stop_group
from stream.stack.tools import CHROMEDRIVER, chromium_binary

DEADLINE_S = 75.0


def start_demo(tmp_path, stack):
    worker_port, board_port = free_ports(2)
    env = {
        **os.environ,
        "FINSTREAM_WORKER_WEB_PORT": str(worker_port),
        "FINSTREAM_DASHBOARD_PORT": str(board_port),
        "FINSTREAM_STACK_DIR": str(stack.stack_path),
    }
    out = open(tmp_path / "demo.out", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "demo", "--seconds", "240"],
        env=env,
        cwd=REPO_ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(rb"dashboard: (http://127\.0\.0\.1:\d+/)", (tmp_path / "demo.out").read_bytes())
        if m:
            return proc, m.group(1).decode(), worker_port
        assert proc.poll() is None, (tmp_path / "demo.out").read_text(errors="replace")[-3000:]
        time.sleep(0.3)
    raise AssertionError(
        "demo printed no dashboard address:\n" + (tmp_path / "demo.out").read_text(errors="replace")[-3000:]
    )


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_binary()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1250",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


PAGE_STATE = """
const n = (id) => Number(document.getElementById(id).textContent) || 0;
const charts = [...document.querySelectorAll('svg.chart')];
return {forecasts: n('forecast-count'), alerts: n('alert-count'), recs: n('rec-count'),
        alert_rows: document.querySelectorAll('#alerts tbody tr').length,
        alert_reasons: [...document.querySelectorAll('#alerts tbody tr td:last-child')].map(td => td.textContent.trim()),
        rec_rows: document.querySelectorAll('#recs tbody tr').length,
        chart_points: charts.map(c => Number(c.dataset.points)),
        polyline_points: charts.map(c => (c.querySelector('polyline.price')?.getAttribute('points') || '').split(' ').length),
        band_points: charts.map(c => (c.querySelector('polygon.band')?.getAttribute('points') || '').split(' ').length),
        job_totals: Object.fromEntries([...document.querySelectorAll('#jobs tbody tr')].map(
            tr => [tr.dataset.job, Number(tr.querySelector('.total').textContent)])),
        status: document.getElementById('status').textContent,
        ops: document.getElementById('ops').textContent};
"""


def wait_page(driver, what, cond, timeout, demo, log):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = driver.execute_script(PAGE_STATE)
        if cond(state):
            return state
        assert demo.poll() is None, f"demo exited:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"page: {what} not within {timeout:.0f}s; last state {state}")


@pytest.mark.integration
def test_dashboard_shows_live_outputs_in_chromium(stack, tmp_path):
    demo, url, _ = start_demo(tmp_path, stack)
    driver = None
    try:
        driver = browser()
        driver.get(url)
        assert "finstream" in driver.title
        first = wait_page(
            driver,
            "forecasts, alerts, recommendations, charts and worker figures",
            lambda s: (
                s["forecasts"] > 0
                and s["alerts"] > 0
                and s["recs"] > 0
                and s["alert_rows"] > 0
                and s["rec_rows"] > 0
                and s["chart_points"]
                and max(s["chart_points"]) >= 5
                and max(s["polyline_points"]) >= 5
                and min(s["band_points"]) >= 2
                and sum(s["job_totals"].values()) > 0
                and s["status"] == "worker ready"
            ),
            DEADLINE_S,
            demo,
            tmp_path / "demo.out",
        )
        assert all(r for r in first["alert_reasons"]), "every alert shows its reasons in words"
        assert all(re.search(rf"{slot}: \S+ v\S+", first["ops"]) for slot in ("forecast", "risk", "recommend")), (
            f"model versions in use are shown: {first['ops']}"
        )
        assert "lag:" in first["ops"] and re.search(r"\d", first["ops"]), first["ops"]
        grown = wait_page(
            driver,
            "counters growing",
            lambda s: (
                s["forecasts"] > first["forecasts"]
                and s["alerts"] > first["alerts"]
                and s["recs"] > first["recs"]
                and sum(s["job_totals"].values()) > sum(first["job_totals"].values())
            ),
            45,
            demo,
            tmp_path / "demo.out",
        )
        shot = tmp_path / "dashboard.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        print(f"screenshot {shot}; page state {grown}")
    finally:
        if driver is not None:
            driver.quit()
        stop_group(demo, signal.SIGINT, timeout=40)  # the demo stops its worker and feeds itself
