"""Per-user product profile: what the customer holds and looked at, updated by user events."""
from __future__ import annotations

from dataclasses import dataclass, field

RECENT_CAP = 10


@dataclass(slots=True)
class UserProfile:
    holdings: list[str] = field(default_factory=list)   # product ids, sorted
    recent: list[str] = field(default_factory=list)     # last viewed/clicked/applied products, newest last

    def to_dict(self) -> dict:
        return {"holdings": self.holdings, "recent": self.recent}

    @classmethod
    def from_dict(cls, d: dict | None) -> "UserProfile":
        return cls(list(d["holdings"]), list(d["recent"])) if d else cls()


def apply_event(p: UserProfile, product_id: str, action: str) -> UserProfile:
    """A buy adds a holding, a sell removes it; other actions are interest signals."""
    held = set(p.holdings)
    recent = p.recent
    if action == "buy":
        held.add(product_id)
    elif action == "sell":
        held.discard(product_id)
    else:
        recent = ([x for x in recent if x != product_id] + [product_id])[-RECENT_CAP:]
    return UserProfile(sorted(held), list(recent))
