"""Per-user product profile: what the customer holds, what they did lately, and what we know of them.

The profile lives in Redis behind the recommend job's fence (one snapshot per user); everything
the recommender feeds the model is derived from it here, so the stream and the training code
(``training.recommend_*``) build the same features from the same event sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS, PRODUCT_INDEX

RECENT_CAP = 10  # the last N interest events kept per user (the model's sequence length)
HOLDING_ACTIONS = frozenset({"buy", "sell"})


@dataclass(slots=True)
class UserProfile:
    holdings: list[str] = field(default_factory=list)  # product ids, sorted
    recent: list[list[str]] = field(default_factory=list)  # [product_id, action, note], oldest first
    attributes: dict[str, float] = field(default_factory=dict)  # live socio-demographics, when a record carried them

    def to_dict(self) -> dict:
        return {"holdings": self.holdings, "recent": self.recent, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, d: dict | None) -> UserProfile:
        if not d:
            return cls()
        # Snapshots written before actions were kept hold bare product ids: read them as views.
        recent = [[r, "view", ""] if isinstance(r, str) else list(r) for r in d["recent"]]
        return cls(list(d["holdings"]), recent, dict(d.get("attributes") or {}))


def apply_event(
    p: UserProfile, product_id: str, action: str, note: str = "", attributes: dict[str, float] | None = None
) -> UserProfile:
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


_ATTR_INDEX = {a: i for i, a in enumerate(CUSTOMER_ATTRIBUTES)}


def attribute_vector(known: dict[str, float], means) -> np.ndarray:
    """The model's ``attributes`` row: the user's live values where known, the training mean elsewhere."""
    row = np.array(means, dtype=np.float32)
    for name, v in known.items():
        row[_ATTR_INDEX[name]] = v
    return row


# --- snapshots ----------------------------------------------------------------------------------
# The fence keeps one output snapshot per applied offset (up to fencing.SNAPSHOTS_KEPT per user), so
# the profile a recommendation was computed from (and the profile state) is stored compactly: [holdings bitmask, "3v 17c
# 3s:fuel" (product index, action code, spend note), attributes if any]. Roughly 40-80 bytes.
_CODE = {"view": "v", "click": "c", "apply": "a", "spend": "s"}
_ACTION = {c: a for a, c in _CODE.items()}


def pack_snapshot(p: UserProfile) -> list:
    mask = sum(1 << PRODUCT_INDEX[h] for h in p.holdings)
    rec = " ".join(
        f"{PRODUCT_INDEX[r[0]]}{_CODE[r[1]]}" + (f":{r[2]}" if len(r) > 2 and r[2] else "") for r in p.recent
    )
    return [mask, rec, p.attributes] if p.attributes else [mask, rec]


def unpack_snapshot(x) -> UserProfile:
    """Inverse of ``pack_snapshot``; also reads the older forms (a holdings list, a profile dict) and
    ``None`` (a user seen for the first time). The profile state itself is stored in this form too."""
    if x is None:
        return UserProfile()
    if isinstance(x, dict):
        return UserProfile.from_dict(x)
    if not x or isinstance(x[0], str):
        return UserProfile(list(x), [], {})
    mask, rec = x[0], x[1]
    recent = []
    for tok in rec.split():
        head, _, note = tok.partition(":")
        recent.append([PRODUCT_IDS[int(head[:-1])], _ACTION[head[-1]], note])
    return UserProfile(
        sorted(p for i, p in enumerate(PRODUCT_IDS) if mask >> i & 1), recent, dict(x[2]) if len(x) > 2 else {}
    )
