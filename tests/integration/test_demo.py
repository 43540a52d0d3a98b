"""`make demo`'s main job on the session stack: every output kind appears, then Ctrl-C stops it cleanly.

No fixed run time: the test watches the demo's own output topics until each kind has shown up
(generous deadline for a loaded machine), then interrupts the demo like a user would.
"""

import os
import re
import signal
import subprocess
import sys
import time

from stream.settings import REPO_ROOT, settings_from_env
from stream.tools.demo import demo_env
from tests.integration.workers import consume

WANTED = {"forecasts": 100, "recommendations": 20, "risk-scores": 100, "risk-alerts": 1}


def wait_for(pattern: str, path, proc, deadline: float) -> re.Match:
    while time.monotonic() < deadline:
        m = re.search(pattern, path.read_text(errors="replace"))
        if m or proc.poll() is not None:
            return m
        time.sleep(0.2)
    return None


def test_demo_shows_forecasts_alerts_and_recommendations(stack, tmp_path):
    out = tmp_path / "demo.out"
    with open(out, "wb") as fh:  # a file, not a pipe: the live view writes a lot
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "demo"], cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT
        )
    try:
        started = wait_for(r"demo-worker-([0-9a-f]{6})\.log", out, proc, time.monotonic() + 120)
        assert started, out.read_text(errors="replace")[-3000:]
        s = settings_from_env({**os.environ, **demo_env(started.group(1))})
        topics = {kind: getattr(s, f"topic_{kind.replace('-', '_')}") for kind in WANTED}
        got = consume(
            s,
            list(topics.values()),
            timeout=300,
            until=lambda g: all(len(g[topics[k]]) >= n for k, n in WANTED.items()),
        )
        seen = {k: len(got[t]) for k, t in topics.items()}
        assert all(seen[k] >= n for k, n in WANTED.items()), (seen, out.read_text(errors="replace")[-2000:])
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(120)
    text = out.read_text(errors="replace")
    assert code == 0, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("demo stopped. counts:"), text[-2000:]  # on a line of its own
    counts = {kind: int(n) for kind, n in re.findall(r"demo-[0-9a-f]{6}-([a-z-]+)=(\d+)", last)}
    assert all(counts.get(k, 0) >= 1 for k in WANTED), last
    assert "Traceback" not in text, text[-3000:]
    assert not (REPO_ROOT / f"{s.app_id}-data").exists(), "the demo's worker left its data in the repository"
