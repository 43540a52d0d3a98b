import numpy as np
import pytest

from stream.core.alerts import is_alert
from stream.core.profiles import UserProfile, apply_event
from stream.core.recommend import top_k
from stream.core.windows import RECORD_SIZE, full_windows, pack_tick, unpack


def test_pack_unpack_round_trip():
    buf = pack_tick(3, 42, 1000, 101.25) + pack_tick(3, 43, 2000, 102.5)
    assert len(buf) == 2 * RECORD_SIZE == 56
    recs = unpack(buf)
    assert list(recs["offset"]) == [42, 43] and list(recs["price"]) == [101.25, 102.5] and recs["partition"][0] == 3
    with pytest.raises(ValueError):
        unpack(buf[:-1])


def test_only_full_windows_are_scored():
    full = b"".join(pack_tick(0, i, i, 100.0 + i) for i in range(3))
    short = full[:RECORD_SIZE]
    prices, idx = full_windows([short, full, full], 3)
    assert list(idx) == [1, 2]
    np.testing.assert_array_equal(prices[0], [100.0, 101.0, 102.0])


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
