"""Per-user product profile: what the customer holds, what they did lately, and what we know of them.

The profile lives in Redis behind the recommend job's fence (one snapshot per user); everything
the recommender feeds the model is derived from it here, so the stream and the training code
(``training.recommend_*``) build the same features from the same event sequence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.core.products import CUSTOMER_ATTRIBUTES

RECENT_CAP = 10          # the last N interest events kept per user (the model's sequence length)
HOLDING_ACTIONS = frozenset({"buy", "sell"})


@dataclass(slots=True)
class UserProfile:
    holdings: list[str] = field(default_factory=list)     # product ids, sorted
    recent: list[list[str]] = field(default_factory=list)  # [product_id, action, note], oldest first
    attributes: dict[str, float] = field(default_factory=dict)  # live socio-demographics, when a record carried them

    def to_dict(self) -> dict:
        return {"holdings": self.holdings, "recent": self.recent, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, d: dict | None) -> "UserProfile":
        if not d:
            return cls()
        # Snapshots written before actions were kept hold bare product ids: read them as views.
        recent = [[r, "view", ""] if isinstance(r, str) else list(r) for r in d["recent"]]
        return cls(list(d["holdings"]), recent, dict(d.get("attributes") or {}))


def apply_event(p: UserProfile, product_id: str, action: str, note: str = "",
                attributes: dict[str, float] | None = None) -> UserProfile:
    """A buy adds a holding, a sell removes it; every other action (view, click, apply, spend) is an
    interest event appended to ``recent`` (repeats count again: they are stronger interest).
    ``note`` says where a derived event came from (the merchant category of a card spend)."""
    held = set(p.holdings)
    recent = p.recent
    if action == "buy":
        held.add(product_id)
    elif action == "sell":
        held.discard(product_id)
    else:
        recent = (recent + [[product_id, action, note]])[-RECENT_CAP:]
    attrs = {**p.attributes, **attributes} if attributes else p.attributes
    return UserProfile(sorted(held), [list(r) for r in recent], dict(attrs))


def attribute_vector(known: dict[str, float], means) -> np.ndarray:
    """The model's ``attributes`` row: the user's live values where known, the training mean elsewhere."""
    row = np.asarray(means, dtype=np.float32).copy()
    for i, name in enumerate(CUSTOMER_ATTRIBUTES):
        if name in known:
            row[i] = known[name]
    return row
