"""The served recommender (the manifest's default, through the serving loader) reacts to what the
user does now, never recommends a held product, and explains each item from the same call."""

from __future__ import annotations

import numpy as np
import pytest

from stream.core.manifest import read_manifest
from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS
from stream.core.profiles import UserProfile, apply_event
from stream.core.recommend import reason_text, top_k
from stream.serving.models import load_model
from stream.serving.recommending import NAMES, model_feeds
from stream.settings import REPO_ROOT

MODEL_DIR = REPO_ROOT / "onnx_models"


@pytest.fixture(scope="module")
def served():
    return load_model(read_manifest(MODEL_DIR).default("recommend"), MODEL_DIR)


def _rank(served, profiles, k=5):
    feeds = model_feeds(served.card, profiles)
    scores, because = served.run(feeds)
    ranked = top_k(scores, feeds["holdings"], k)
    return [
        [
            (PRODUCT_IDS[j], reason_text(int(because[i, j]), j, p.recent, PRODUCT_IDS, NAMES, bool(p.attributes)))
            for j, _ in row
        ]
        for i, (p, row) in enumerate(zip(profiles, ranked))
    ], scores


def _profile(*events):
    p = UserProfile()
    for e in events:
        p = apply_event(p, *e)
    return p


def test_default_recommender_reads_interest_and_states_its_attributes(served):
    names = [t.name for t in served.card.inputs]
    assert names == ["holdings", "interest", "attributes"] and [t.name for t in served.card.outputs] == [
        "scores",
        "because",
    ]
    assert served.card.extra["attributes_used"] == list(CUSTOMER_ATTRIBUTES)


def test_same_user_different_recent_events_different_ranking(served):
    base = ("motorcycle", "buy")
    users = [
        _profile(base),
        _profile(base, ("trailer", "click")),
        _profile(base, ("caravan", "apply")),
        _profile(base, ("boat", "spend", "5551"), ("boat", "spend", "5551")),
    ]
    ranked, _ = _rank(served, users)
    tops = [r[0][0] for r in ranked]
    assert tops[1:] == ["trailer", "caravan", "boat"] and tops[0] not in tops[1:]
    assert ranked[1][0][1] == "because you clicked on Trailer policy"
    assert ranked[2][0][1] == "because you applied for Mobile home (caravan) policy"
    assert ranked[3][0][1] == "because you spent on a boat dealer (Boat policy)"
    assert all(reason for r in ranked for _, reason in r)


def test_recency_decides_between_equal_interests(served):
    older_trailer = _profile(("trailer", "click"), ("boat", "click"))
    older_boat = _profile(("boat", "click"), ("trailer", "click"))
    _, s = _rank(served, [older_trailer, older_boat])
    t, b = PRODUCT_IDS.index("trailer"), PRODUCT_IDS.index("boat")
    assert s[0, b] - s[0, t] > 0 and s[1, t] - s[1, b] > 0  # the newer click weighs more


def test_a_held_product_is_never_recommended_however_strong_the_interest(served):
    p = _profile(("car", "buy"), *[("car", "apply")] * 10)
    ranked, scores = _rank(served, [p], k=len(PRODUCT_IDS))
    assert "car" not in [pid for pid, _ in ranked[0]] and len(ranked[0]) == len(PRODUCT_IDS) - 1
    assert scores[0, PRODUCT_IDS.index("car")] < -50


def test_live_attributes_replace_the_training_means(served):
    means = served.card.extra["attribute_means"]
    known = _profile(("fire", "view", "", {"MOSTYPE": 1.0, "MKOOPKLA": 8.0, "MINKGEM": 9.0}))
    unknown = _profile(("fire", "view"))
    feeds = model_feeds(served.card, [known, unknown])
    assert feeds["attributes"][1].tolist() == pytest.approx(means)
    assert feeds["attributes"][0][CUSTOMER_ATTRIBUTES.index("MINKGEM")] == 9.0
    s = served.run(feeds)[0]
    assert not np.allclose(s[0], s[1])
