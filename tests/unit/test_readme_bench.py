"""The README's benchmark figures are those of the runs kept in ``reports/bench/``.

Every row ``stream.tools.bench_markdown`` renders from one of those runs must stand in the README's
"Benchmarks" section verbatim (the table of one full run), and the targets judged over all of them
too. A README edit that rounds a figure its own way, or a run replaced without the README, fails.
"""

from __future__ import annotations

import json
from datetime import datetime

from stream.settings import REPO_ROOT
from stream.tools import bench_markdown
from tests.unit.test_readme_claims import section

RUNS = sorted(
    (json.loads(p.read_text()) for p in (REPO_ROOT / "reports" / "bench").glob("bench-*.json")),
    key=lambda run: run["started_at"],
)
TEXT = section("Benchmarks")


def test_the_kept_runs_are_full_exactly_once_runs():
    assert RUNS, "reports/bench/ holds no bench JSON"
    for run in RUNS:
        names = set(bench_markdown.scenarios(run))
        assert {"onnx", *(name for name, _ in bench_markdown.KAFKA)} <= names, run["started_at"]
        assert run["settings"]["processing_guarantee"] == "exactly_once"
        assert run["events"] == 20_000
        assert run.get("risk_feed") == "ieee-cis", "the README's risk figures are on the real card feed"


def test_one_runs_table_stands_in_the_readme_verbatim():
    shown = [run for run in RUNS if all(row in TEXT for row in bench_markdown.rows(run))]
    assert len(shown) == 1, [r for r in bench_markdown.rows(RUNS[-1]) if r not in TEXT][:3]
    started = datetime.fromisoformat(shown[0]["started_at"]).strftime("%Y-%m-%d %H:%M UTC")
    assert started in TEXT, f"the README does not say when the run in its table started ({started})"


def test_the_targets_judged_over_the_kept_runs_stand_in_the_readme():
    missing = [row for row in bench_markdown.targets(RUNS) if row not in TEXT]
    assert not missing, missing
