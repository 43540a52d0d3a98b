"""docs/ops: the Prometheus config and alert rules are valid, fire when they should (promtool,
Debian's prometheus package, installed by `finstream stack install`), and name only metrics the
worker really exports."""

import re
import shutil
import subprocess

import pytest

from stream.metrics import Metrics
from stream.observe import scrape_families
from stream.settings import REPO_ROOT

OPS = REPO_ROOT / "docs" / "ops"


def promtool(*args) -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool missing: run `finstream stack install` (apt package prometheus)"
    done = subprocess.run([exe, *args], cwd=OPS, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "finstream-rules.yml"),
        ("test", "rules", "finstream-rules.test.yml"),
    ],
)
def test_promtool_accepts(args):
    assert "SUCCESS" in promtool(*args)


def exported_names() -> set[str]:
    fams = list(Metrics().registry.collect()) + list(scrape_families({}, lambda tp: None, set))
    suffix = {"counter": ["_total"], "info": ["_info"], "histogram": ["_bucket", "_sum", "_count"]}
    return {f.name + s for f in fams for s in suffix.get(f.type, [""])}


def test_rules_use_only_exported_metrics():
    used = set(re.findall(r"\bfinstream_[a-z_]+", (OPS / "finstream-rules.yml").read_text()))
    assert used and used <= exported_names(), used - exported_names()
