"""Contract tests generated for every model in the manifest, through the serving session."""

from __future__ import annotations

import numpy as np
import pytest

from stream.core.manifest import read_manifest
from stream.serving.models import load_model
from stream.settings import REPO_ROOT

MODEL_DIR = REPO_ROOT / "onnx_models"
MANIFEST = read_manifest(MODEL_DIR)


def sample_feeds(card, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in card.inputs:
        shape = [n] + [d for d in spec.shape[1:]]
        x = rng.normal(size=shape)
        if spec.name == "holdings":
            x = (x > 0.8).astype(float)
        ref = card.reference_distribution
        if spec.features and ref and all(f in ref for f in spec.features):
            mean = np.array([ref[f]["mean"] for f in spec.features])
            std = np.array([ref[f]["std"] or 1.0 for f in spec.features])
            x = mean + x * std
        feeds[spec.name] = x.astype(spec.dtype)
    return feeds


@pytest.fixture(scope="module", params=sorted(MANIFEST.models))
def model(request):
    return load_model(MANIFEST.get(request.param), MODEL_DIR)


def test_declared_outputs_and_finite(model):
    feeds = sample_feeds(model.card, 37)
    outs = model.run(feeds)
    assert len(outs) == len(model.card.outputs)
    for out, spec in zip(outs, model.card.outputs):
        assert out.shape[0] == 37 and list(out.shape[1:]) == list(spec.shape[1:])
        assert np.isfinite(out).all()


def test_row_results_do_not_depend_on_the_batch(model):
    """A replayed event lands in another batch: its score must be the same bytes."""
    feeds = sample_feeds(model.card, 120, seed=1)
    whole = model.run(feeds)[0]
    for size in (1, 3, 17, 50):
        parts = np.concatenate(
            [model.run({k: v[i : i + size] for k, v in feeds.items()})[0] for i in range(0, 120, size)]
        )
        assert np.array_equal(parts, whole), f"batch size {size} changed some row's bits"


PROBABILITY_MODELS = sorted(
    n for n, c in MANIFEST.models.items() if c.task in ("transaction_risk", "credit_default", "purchase_propensity")
)


@pytest.mark.parametrize("name", PROBABILITY_MODELS)
def test_scores_are_probabilities_for_risk_models(name):
    model = load_model(MANIFEST.get(name), MODEL_DIR)
    out = model.run(sample_feeds(model.card, 64, seed=2))[0]
    assert ((out >= 0) & (out <= 1)).all()
    if model.card.task == "transaction_risk":
        assert model.card.threshold is not None and 0 < model.card.threshold < 1
        assert len(model.card.baseline) == len(model.card.features)
