"""user-events -> recommendations: per-user profile in Redis, ranked by the default recommender.

The profile (holdings, the last ``RECENT_CAP`` interest events, live attributes) is folded under
the fence; the model gets holdings, the recency/action-weighted ``interest`` vector
(``stream.core.interest``, parameters from the card) and attributes (live where known, the
training means elsewhere). An interest-aware model also returns, per product, its strongest
source, which becomes each item's reason: scores and reasons come from one onnxruntime call.
Derived ``spend`` events from linked card transactions (``stream.core.spend``) arrive here as
ordinary user events.
"""

from __future__ import annotations

import numpy as np

from stream.core.contracts import ContractError, parse_user_event
from stream.core.features import holdings_vector
from stream.core.interest import card_params, interest_vector
from stream.core.products import BY_ID, PRODUCT_IDS, PRODUCT_INDEX
from stream.core.profiles import UserProfile, apply_event, attribute_vector, pack_snapshot, unpack_snapshot
from stream.core.recommend import reason_text, top_k
from stream.core.records import OutputRecord, SourceRecord, output
from stream.serving.base import Job

NAMES = {p: BY_ID[p].name for p in PRODUCT_IDS}


def _step(e, fresh: dict):
    """Fold step; ``fresh`` keeps the new profile object so the batch need not unpack the snapshot
    it just packed (redelivered events, served from their snapshot, are unpacked)."""

    def step(p: UserProfile):
        nxt = apply_event(p, e.product_id, e.action, e.merchant_category or "", e.attributes)
        fresh[id(e)] = nxt
        return nxt, pack_snapshot(nxt)

    return step


def model_feeds(card, profiles: list[UserProfile]) -> dict[str, np.ndarray]:
    """The model's inputs for a batch of profiles, by the names the card declares."""
    names = {t.name for t in card.inputs}
    feeds = {"holdings": np.stack([holdings_vector(frozenset(p.holdings), PRODUCT_IDS) for p in profiles])}
    if "interest" in names:
        half_life, strength = card_params(card.extra)
        feeds["interest"] = np.stack(
            [interest_vector(p.recent, PRODUCT_INDEX, len(PRODUCT_IDS), half_life, strength) for p in profiles]
        )
    if "attributes" in names:
        means = card.extra.get("attribute_means", [])
        feeds["attributes"] = np.stack([attribute_vector(p.attributes, means) for p in profiles])
    return feeds


class RecommendJob(Job):
    slot = "recommend"

    def _known_product(self, d: dict):
        ev = parse_user_event(d)
        if ev.product_id not in PRODUCT_INDEX:
            raise ContractError("unknown product_id (not in the catalogue)")
        return ev

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, self._known_product)
        fresh: dict = {}
        snaps, kept = await self.fold(
            "user", events, lambda e: e.user_id, unpack_snapshot, pack_snapshot, lambda e: _step(e, fresh), out
        )
        self.counts["user_events"] += len(kept)
        if not kept:
            return out
        model = self.models[self.slot]
        profiles = [fresh.get(id(e)) or unpack_snapshot(s) for (_, e), s in zip(kept, snaps)]
        feeds = model_feeds(model.card, profiles)
        res = model.run(feeds)
        scores, because = res[0], (res[1] if len(res) > 1 else None)
        k = self.settings.recommend_k
        for i, ((rec, e), p, ranked) in enumerate(zip(kept, profiles, top_k(scores, feeds["holdings"], k))):
            items = [
                {
                    "product_id": PRODUCT_IDS[j],
                    "score": s,
                    **(
                        {"reason": reason_text(int(because[i, j]), j, p.recent, PRODUCT_IDS, NAMES, bool(p.attributes))}
                        if because is not None
                        else {}
                    ),
                }
                for j, s in ranked
            ]
            trigger = {"product_id": e.product_id, "action": e.action}
            if e.merchant_category:
                trigger["merchant_category"] = e.merchant_category
            out.append(
                output(
                    self.settings.topic_recommendations,
                    rec,
                    {
                        "user_id": self.ids(e.user_id),
                        "ts": e.ts,
                        "trigger": trigger,
                        "holdings": p.holdings,
                        "recent": [r[0] for r in p.recent[-3:]],
                        "items": items,
                        "model": model.name,
                        "model_version": model.version,
                    },
                )
            )
        self.counts["recommendations"] += len(kept)
        return out
