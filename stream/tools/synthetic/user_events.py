"""Seeded synthetic product interactions (views, clicks, applications, purchases): the
``user-events`` stream kind, and the recommend pipeline's load for ``finstream bench``.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import numpy as np

from stream.core.contracts import ACTIONS, SCHEMA_VERSION
from stream.core.products import CATALOGUE, PRODUCT_IDS
from stream.tools.synthetic.world import START_MS

_ACTION_ORDER: tuple[str, ...] = ("view", "click", "apply", "buy", "sell")
_ACTION_P = np.array([0.60, 0.25, 0.07, 0.05, 0.03])
# "spend" is derived from linked card transactions (stream.core.spend), never sent by an app
assert set(_ACTION_ORDER) == set(ACTIONS) - {"spend"}, "synthetic actions out of step with the contract"

# Rough product popularity (share of Caravan customers holding each product; caravan ~6%).
_POPULARITY = {
    "private_liability": 0.40,
    "firm_liability": 0.014,
    "agri_liability": 0.021,
    "car": 0.51,
    "delivery_van": 0.008,
    "motorcycle": 0.038,
    "lorry": 0.002,
    "trailer": 0.011,
    "tractor": 0.025,
    "agri_machines": 0.004,
    "moped": 0.068,
    "life": 0.05,
    "private_accident": 0.005,
    "family_accident": 0.007,
    "disability": 0.004,
    "fire": 0.54,
    "surfboard": 0.001,
    "boat": 0.006,
    "bicycle": 0.025,
    "property": 0.008,
    "social_security": 0.014,
    "caravan": 0.06,
}


def user_event_stream(
    n_users: int = 1000, seed: int = 7, start_ms: int = START_MS, mean_gap_ms: float = 200.0, user_prefix: str = "user"
) -> Iterator[dict]:
    """Endless product interactions: each user prefers one or two business lines."""
    rng = np.random.default_rng(seed)
    lines = sorted({p.line for p in CATALOGUE})
    line_idx = np.array([lines.index(p.line) for p in CATALOGUE])
    pop = np.array([_POPULARITY.get(p, 0.01) for p in PRODUCT_IDS]) + 0.02
    affinity = rng.dirichlet(np.full(len(lines), 0.5), size=n_users)  # (users, lines)
    ts = float(start_ms)
    counter = 0
    while True:
        u = int(rng.integers(n_users))
        p = pop * (0.2 + affinity[u, line_idx])
        product = PRODUCT_IDS[int(rng.choice(len(PRODUCT_IDS), p=p / p.sum()))]
        action = _ACTION_ORDER[int(rng.choice(len(_ACTION_ORDER), p=_ACTION_P))]
        ts += rng.exponential(mean_gap_ms)
        counter += 1
        yield {
            "v": SCHEMA_VERSION,
            "user_id": f"{user_prefix}-{u:05d}",
            "ts": int(ts),
            "product_id": product,
            "action": action,
            "event_id": f"ue-{seed}-{counter:010d}",
        }


def load_records(n: int, seed: int = 7, spread: int | None = None) -> list[tuple[bytes, bytes]]:
    """n user events keyed by user id, over 1,000 users."""
    import orjson

    return [(r["user_id"].encode(), orjson.dumps(r)) for r in islice(user_event_stream(n_users=1000, seed=seed), n)]
