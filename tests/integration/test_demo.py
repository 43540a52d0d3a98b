"""`make demo`'s main job, run briefly on the session stack: every output kind appears."""
import re
import subprocess
import sys

from stream.settings import REPO_ROOT


def test_demo_shows_forecasts_alerts_and_recommendations(stack):
    done = subprocess.run([sys.executable, "-m", "stream.cli", "demo", "--seconds", "45"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("demo stopped. counts:"), done.stdout[-2000:]   # on a line of its own
    counts = {kind: int(n) for kind, n in re.findall(r"demo-[0-9a-f]{6}-([a-z-]+)=(\d+)", last)}
    assert counts.get("forecasts", 0) > 100, last
    assert counts.get("recommendations", 0) > 20, last
    assert counts.get("risk-scores", 0) > 100, last
    assert counts.get("risk-alerts", 0) >= 1, last
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
