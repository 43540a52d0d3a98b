import numpy as np
import pytest

from stream.core.alerts import is_alert
from stream.core.profiles import UserProfile, apply_event
from stream.core.recommend import top_k


def test_top_k_never_returns_held_products_and_is_deterministic():
    scores = np.array([[0.9, 0.8, 0.8, 0.1], [0.5, 0.5, 0.5, 0.5]])
    held = np.array([[1, 0, 0, 0], [1, 1, 1, 1]])
    r = top_k(scores, held, 2)
    assert r[0] == [(1, 0.8), (2, 0.8)]
    assert r[1] == []


def test_profile_buy_sell_view():
    p = apply_event(UserProfile(), "car", "buy")
    p = apply_event(p, "fire", "view")
    p = apply_event(p, "life", "buy")
    assert p.holdings == ["car", "life"] and p.recent == [["fire", "view", ""]]
    p = apply_event(p, "car", "sell")
    assert p.holdings == ["life"]
    assert UserProfile.from_dict(p.to_dict()) == p


def test_alert_rule():
    assert is_alert(0.5, 0.5) and not is_alert(0.49, 0.5)
    with pytest.raises(ValueError):
        is_alert(0.9, None)
