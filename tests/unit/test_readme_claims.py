"""The README's model figures and served defaults agree with what training wrote.

Generic over the README's text: every three-decimal figure (an AUC, say), every "N% of" share and
every "≈N of M" count in the "Training and model choice" section must be a value of
``reports/models.json`` at the precision printed, and the model named first in each row's
"served default" column must be that job's default in ``onnx_models/manifest.json``. A retrain
that moves a figure, or a README edit that invents one, fails here.
"""

from __future__ import annotations

import json
import re

import pytest

from stream import pipelines
from stream.core.manifest import read_manifest
from stream.settings import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
REPORT = json.loads((REPO_ROOT / "reports" / "models.json").read_text())


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in numbers(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in numbers(v)]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return [float(tree)]
    return []


REPORTED = numbers(REPORT["jobs"])
TEXT = section("Training and model choice")


def reported(value: float, decimals: int) -> bool:
    return any(round(x, decimals) == value for x in REPORTED)


def claims() -> list[tuple[str, float, int]]:
    """(as printed, value, decimals) for each figure the section states."""
    out = [(m.group(0), float(m.group(0)), 3) for m in re.finditer(r"(?<![\d.])\d\.\d{3}(?!\d)", TEXT)]
    out += [(m.group(0), int(m.group(1)) / 100, 2) for m in re.finditer(r"(\d+)% of", TEXT)]
    for m in re.finditer(r"≈\s?(\d+) of (\d+)", TEXT):
        out += [(m.group(0), float(m.group(1)), 0), (m.group(0), float(m.group(2)), 0)]
    return out


def test_the_section_states_figures():
    assert len(claims()) >= 3, TEXT[:500]


@pytest.mark.parametrize("printed,value,decimals", claims())
def test_each_figure_is_in_the_report(printed, value, decimals):
    assert reported(value, decimals), f"README says {printed!r}; reports/models.json has no such value"


def test_served_defaults_are_the_manifests():
    defaults = read_manifest(REPO_ROOT / "onnx_models").defaults
    rows = {}
    for line in TEXT.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in defaults:
            named = re.search(r"`([A-Za-z0-9_]+)`", cells[-1])
            rows[cells[0]] = named.group(1) if named else None
    # one row per served slot (the table is by job; per-interval defaults such as forecast@1h are
    # described in the job's own docs), naming the manifest's default
    assert rows == {slot: defaults[slot] for slot in pipelines.slots()}
    assert REPORT["defaults"] == defaults
