"""user-events -> recommendations: per-user profile in Redis, ranked by the default recommender."""
from __future__ import annotations

import numpy as np

from stream.core.contracts import ContractError, parse_user_event
from stream.core.features import holdings_vector
from stream.core.products import PRODUCT_IDS, PRODUCT_INDEX
from stream.core.profiles import UserProfile, apply_event
from stream.core.recommend import top_k
from stream.core.records import OutputRecord, SourceRecord, output
from stream.serving.base import Job


def _step(e):
    def step(p: UserProfile):
        nxt = apply_event(p, e.product_id, e.action)
        return nxt, nxt.holdings
    return step


class RecommendJob(Job):
    slot = "recommend"

    def _known_product(self, d: dict):
        ev = parse_user_event(d)
        if ev.product_id not in PRODUCT_INDEX:
            raise ContractError(f"unknown product_id {ev.product_id!r}")
        return ev

    async def process(self, batch: list[SourceRecord]) -> list[OutputRecord]:
        events, out = self.begin(batch, self._known_product)
        held, kept = await self.fold("user", events, lambda e: e.user_id, UserProfile.from_dict,
                                     UserProfile.to_dict, _step, out)
        self.counts["user_events"] += len(kept)
        if not kept:
            return out
        model = self.models[self.slot]
        card = model.card
        h = np.stack([holdings_vector(frozenset(x), PRODUCT_IDS) for x in held])
        feeds = {"holdings": h}
        if any(t.name == "attributes" for t in card.inputs):
            # Live users carry no socio-demographics: the training mean stands in (stated in the manifest).
            attrs = np.asarray(card.extra.get("attribute_means", []), dtype=np.float32)
            feeds["attributes"] = np.broadcast_to(attrs, (len(h), attrs.size)).copy()
        scores = model.run(feeds)[0]
        k = self.settings.recommend_k
        for (rec, e), hv, ranked in zip(kept, held, top_k(scores, h, k)):
            out.append(output(self.settings.topic_recommendations, rec, {
                "user_id": self.ids(e.user_id), "ts": e.ts, "trigger": {"product_id": e.product_id, "action": e.action},
                "holdings": hv, "items": [{"product_id": PRODUCT_IDS[j], "score": s} for j, s in ranked],
                "model": model.name, "model_version": model.version,
            }))
        self.counts["recommendations"] += len(kept)
        return out
