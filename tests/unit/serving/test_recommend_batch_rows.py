"""The recommend job's batch-wide rows equal the per-profile definitions they replace: holdings
rows from bitmasks = ``features.holdings_vector`` per profile, reasons from a profile's latest
interest map = the reason found by scanning ``recent``, packed profiles round-trip through the
memoised codec."""

from __future__ import annotations

import random

import numpy as np

from stream.core.features import holdings_vector
from stream.core.interest import ACTION_STRENGTH, interest_rows, recency_weights
from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS, PRODUCT_INDEX
from stream.core.profiles import (
    UserProfile,
    apply_event,
    attribute_rows,
    attribute_vector,
    pack_snapshot,
    unpack_snapshot,
)
from stream.core.recommend import Reasons, latest_interest, rank, reason_text, top_k
from stream.serving.recommending import NAMES, holdings_matrix

ACTIONS = ["view", "click", "apply", "spend", "buy", "sell"]


def _profiles(n: int, seed: int = 3) -> list[UserProfile]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        p = UserProfile()
        for _ in range(rnd.randrange(0, 25)):
            action = rnd.choice(ACTIONS)
            note = rnd.choice(["", "fuel", "5551"]) if action == "spend" else ""
            attrs = {rnd.choice(CUSTOMER_ATTRIBUTES): rnd.uniform(0, 9)} if rnd.random() < 0.1 else None
            p = apply_event(p, rnd.choice(PRODUCT_IDS), action, note, attrs)
        out.append(p)
    return out


def test_holdings_rows_from_bitmasks_equal_the_per_profile_vectors():
    profiles = _profiles(300)
    assert any(p.holdings for p in profiles) and any(not p.holdings for p in profiles)
    expected = np.stack([holdings_vector(frozenset(p.holdings), PRODUCT_IDS) for p in profiles])
    got = holdings_matrix(profiles)
    assert got.dtype == expected.dtype == np.float32
    assert np.array_equal(got, expected)


def test_reasons_from_the_latest_interest_map_equal_scanning_recent():
    n = len(PRODUCT_IDS)
    for p in _profiles(200, seed=5):
        latest = latest_interest(p.recent)
        for source in range(2 * n + 1):
            for product in (0, n - 1, source % n):
                scan = reason_text(source, product, p.recent, PRODUCT_IDS, NAMES, bool(p.attributes))
                fast = reason_text(source, product, p.recent, PRODUCT_IDS, NAMES, bool(p.attributes), latest)
                assert fast == scan


def test_memoised_codec_round_trips_and_matches_the_plain_encoding():
    for p in _profiles(200, seed=7):
        packed = pack_snapshot(p)
        plain = " ".join(
            f"{PRODUCT_IDS.index(r[0])}{r[1][0]}" + (f":{r[2]}" if r[2] else "") for r in p.recent
        )  # action codes are the first letters: v, c, a, s
        assert packed[1] == plain
        assert packed[0] == sum(1 << PRODUCT_IDS.index(h) for h in p.holdings)
        assert unpack_snapshot(packed) == p
        assert unpack_snapshot(packed) == p  # second time from the memo


def test_the_tokens_a_profile_carries_along_are_always_those_of_its_recent_events():
    """``apply_event`` keeps ``packed_recent`` (so ``pack_snapshot`` need not tokenise ten events per
    event); whatever the events, the snapshot is the plain encoding of ``recent``, and the cache
    gives up (None) rather than be wrong: an action or product outside the codes."""
    from stream.core.profiles import RECENT_CAP, _token

    rnd = random.Random(17)
    fell_back = carried = 0
    for start in range(300):
        p = unpack_snapshot(None) if start % 3 else unpack_snapshot(pack_snapshot(_profiles(1, seed=start)[0]))
        for _ in range(rnd.randrange(1, 3 * RECENT_CAP)):
            action = rnd.choice(ACTIONS + ["spend"] * 2)
            note = rnd.choice(["", "fuel", "car dealer", "5551"]) if action == "spend" else ""
            p = apply_event(p, rnd.choice(PRODUCT_IDS), action, note)
            if p.packed_recent is None:
                fell_back += 1
            else:
                carried += 1
                assert p.packed_recent == " ".join(map(_token, p.recent))
            assert pack_snapshot(p)[1] == " ".join(map(_token, p.recent))
    assert carried > 1000 and fell_back == 0  # spaced notes are made one word: the cache keeps up
    spaced = apply_event(unpack_snapshot(None), "car", "spend", "gift  shop")
    assert spaced.recent == [["car", "spend", "gift_shop"]] and pack_snapshot(spaced)[1] == "3s:gift_shop"
    # written before notes were one word: a word that is no token continues the note before it
    old = unpack_snapshot([0, "3s:gift shop 4v"])
    assert old.recent == [["car", "spend", "gift shop"], ["delivery_van", "view", ""]] and old.packed_recent is None
    odd = apply_event(unpack_snapshot(None), "not_a_product", "view")  # training data may hold these
    assert odd.packed_recent is None and odd.recent == [["not_a_product", "view", ""]]


def one_by_one(recent, n, half_life):
    """The reference: the per-event loop the stream ran before ``interest_rows`` (float64 sums in
    event order, then float32)."""
    out = [0.0] * n
    for r, w in zip(recent, recency_weights([r[1] for r in recent], half_life, ACTION_STRENGTH)):
        j = PRODUCT_INDEX.get(r[0])
        if j is not None:
            out[j] += float(w)
    return np.array(out, dtype=np.float32)


def test_interest_and_attribute_rows_equal_the_per_profile_vectors():
    profiles = _profiles(300, seed=11)
    assert any(p.attributes for p in profiles) and any(len(p.recent) > 3 for p in profiles)
    n = len(PRODUCT_IDS)
    for half_life in (0.0, 3.0):
        expected = np.stack([one_by_one(p.recent, n, half_life) for p in profiles])
        got = interest_rows([p.recent for p in profiles], PRODUCT_INDEX, n, half_life, ACTION_STRENGTH)
        assert got.dtype == np.float32 and np.array_equal(got, expected)
    # products outside the index and unknown actions count as the per-row definition counts them
    odd = [[["nope", "view", ""], ["car", "view", ""], ["car", "stare", ""]], [], [["life", "apply", ""]] * 12]
    expected = np.stack([one_by_one(r, n, 3.0) for r in odd])
    assert np.array_equal(interest_rows(odd, PRODUCT_INDEX, n, 3.0, ACTION_STRENGTH), expected)
    assert interest_rows([], PRODUCT_INDEX, n, 3.0).shape == (0, n)
    means = [0.5 + i for i in range(len(CUSTOMER_ATTRIBUTES))]
    expected = np.stack([attribute_vector(p.attributes, means) for p in profiles])
    got = attribute_rows([p.attributes for p in profiles], means)
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_batch_reasons_equal_reason_text_item_by_item():
    """``Reasons`` words held and profile sources once and looks recent-event words up by (source,
    item is the source, latest action and note): the same words as ``reason_text`` per item, for
    every source the model can give (and ones it cannot), known and unknown profiles, spend notes."""
    rnd = random.Random(23)
    n = len(PRODUCT_IDS)
    reasons = Reasons(PRODUCT_IDS, NAMES)
    checked = 0
    for p in _profiles(300, seed=29) * 2:  # twice: the second pass reads the memo
        known = bool(p.attributes)
        products = [rnd.randrange(n) for _ in range(6)]
        sources = [rnd.choice([rnd.randrange(2 * n + 1), n + products[0], -1, 2 * n + 5]) for _ in range(6)]
        if p.recent:
            sources[1] = n + PRODUCT_IDS.index(p.recent[-1][0])
        want = [reason_text(s, j, p.recent, PRODUCT_IDS, NAMES, known) for s, j in zip(sources, products)]
        assert reasons.texts(sources, products, p.recent, known) == want
        checked += sum(n <= s < 2 * n for s in sources)
    assert checked > 1000 and any("spent on" in t for t in reasons._interest.values())


def test_rank_gives_top_k_rows():
    rnd = np.random.default_rng(4)
    scores = rnd.random((50, len(PRODUCT_IDS))).astype(np.float32)
    scores[:, 3] = scores[:, 4]  # ties break by catalogue order
    held = (rnd.random((50, len(PRODUCT_IDS))) < 0.3).astype(np.float32)
    held[0] = 1  # nothing free
    for k in (1, 5, len(PRODUCT_IDS)):
        order, top = rank(scores, held, k)
        want = top_k(scores, held, k)
        got = [[(j, v) for j, v in zip(r, vs) if v != float("-inf")] for r, vs in zip(order.tolist(), top.tolist())]
        assert got == want and want[0] == []
