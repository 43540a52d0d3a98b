"""`finstream train` from the committed code rebuilds every model, the manifest and the report.

Byte equality is what we see on our machines (seeds fixed, tensor names canonicalised), but
float kernels may differ on another CPU, so the test holds the headline metrics to a tolerance
and reports how many files came out byte-identical.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from stream.core.manifest import read_manifest
from stream.settings import REPO_ROOT

pytestmark = pytest.mark.training
HEADLINE = ("auc", "pr_auc", "return_rmse", "qlike", "hr@5", "ndcg@5", "top20_recall", "r2")


def close(a: float, b: float) -> bool:
    return abs(a - b) <= max(0.02, 0.05 * abs(b))


@pytest.mark.timeout(1200)
def test_finstream_train_rebuilds_the_committed_models(tmp_path):
    done = subprocess.run([sys.executable, "-m", "stream.cli", "train", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=1100)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    committed = read_manifest(REPO_ROOT / "onnx_models")
    rebuilt = read_manifest(tmp_path)
    assert sorted(rebuilt.models) == sorted(committed.models)
    assert rebuilt.defaults == committed.defaults
    assert (tmp_path / "reports" / "models.md").read_text().startswith("# finstream models")
    same_bytes = 0
    for name, card in committed.models.items():
        new = rebuilt.get(name)
        assert (tmp_path / new.file).is_file()
        same_bytes += new.sha256 == card.sha256
        for key in HEADLINE:
            if isinstance(card.metrics.get(key), float):
                assert close(new.metrics[key], card.metrics[key]), (name, key, new.metrics[key], card.metrics[key])
    print(f"{same_bytes}/{len(committed.models)} ONNX files byte-identical to the committed ones")
