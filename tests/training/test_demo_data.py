"""The demo's bundled user events are what training.demo_data builds from real Caravan holdings."""

from __future__ import annotations

from stream.settings import REPO_ROOT
from training.demo_data import OUT, build

BUNDLED = REPO_ROOT / "stream" / "data" / "caravan_events.csv"


def test_bundled_file_is_the_builders_output(tmp_path):
    assert OUT == BUNDLED
    assert build(out=tmp_path / "events.csv").read_bytes() == BUNDLED.read_bytes()
