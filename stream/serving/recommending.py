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
from stream.core.interest import card_params, interest_rows
from stream.core.products import BY_ID, PRODUCT_IDS, PRODUCT_INDEX
from stream.core.profiles import (
    UserProfile,
    apply_event,
    attribute_rows,
    mask_of,
    pack_snapshot,
    unpack_snapshot,
)
from stream.core.recommend import Reasons, rank
from stream.core.records import OutputRecord, SourceRecord, output
from stream.serving.base import Job

NAMES = {p: BY_ID[p].name for p in PRODUCT_IDS}
_BITS = np.arange(len(PRODUCT_IDS), dtype=np.int64)
REASONS = Reasons(PRODUCT_IDS, NAMES)


def _step(e, fresh: dict, packed: dict):
    """Fold step; ``fresh`` keeps the new profile object so the batch need not unpack the snapshot
    it just packed (redelivered events, served from their snapshot, are unpacked), and ``packed``
    its packed form by object id, so saving a user's final profile does not pack it again."""

    def step(p: UserProfile):
        nxt = apply_event(p, e.product_id, e.action, e.merchant_category or "", e.attributes)
        fresh[id(e)] = nxt
        snap = packed[id(nxt)] = pack_snapshot(nxt)
        return nxt, snap

    return step


def holdings_matrix(profiles: list[UserProfile]) -> np.ndarray:
    """The model's ``holdings`` rows for a batch (0/1 float32, catalogue order), from bitmasks."""
    masks = np.fromiter(map(mask_of, profiles), dtype=np.int64, count=len(profiles))
    return ((masks[:, None] >> _BITS) & 1).astype(np.float32)


def model_feeds(card, profiles: list[UserProfile]) -> dict[str, np.ndarray]:
    """The model's inputs for a batch of profiles, by the names the card declares."""
    names = {t.name for t in card.inputs}
    feeds = {"holdings": holdings_matrix(profiles)}
    if "interest" in names:
        half_life, strength = card_params(card.extra)
        feeds["interest"] = interest_rows(
            [p.recent for p in profiles], PRODUCT_INDEX, len(PRODUCT_IDS), half_life, strength
        )
    if "attributes" in names:
        means = card.extra.get("attribute_means", [])
        feeds["attributes"] = attribute_rows([p.attributes for p in profiles], means)
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
        packed: dict = {}  # id(profile) -> its packed form; the profiles stay alive in ``fresh``

        def encode(p: UserProfile) -> list:
            got = packed.get(id(p))
            return got if got is not None else pack_snapshot(p)

        snaps, kept = await self.fold(
            "user", events, lambda e: e.user_id, unpack_snapshot, encode, lambda e: _step(e, fresh, packed), out
        )
        self.counts["user_events"] += len(kept)
        if not kept:
            return out
        model = self.models[self.slot]
        profiles = [fresh.get(id(e)) or unpack_snapshot(s) for (_, e), s in zip(kept, snaps)]
        feeds = model_feeds(model.card, profiles)
        res = model.run(feeds)
        scores, because = res[0], (res[1] if len(res) > 1 else None)
        order, top = rank(scores, feeds["holdings"], self.settings.recommend_k)
        orders, values = order.tolist(), top.tolist()  # plain ints and floats, not numpy scalars
        all_free = not np.isneginf(top).any()  # the usual case: k products not held in every row
        # the model's source of each ranked item only (not all 2P+1 per row)
        sources = np.take_along_axis(because, order, axis=1).astype(np.int64).tolist() if because is not None else None
        for i, ((rec, e), p) in enumerate(zip(kept, profiles)):
            js, vs = orders[i], values[i]
            ss = sources[i] if sources is not None else None
            if not all_free:  # a held product ranks only when fewer than k are free: never recommended
                free = [x for x, v in enumerate(vs) if v != -np.inf]
                js, vs = [js[x] for x in free], [vs[x] for x in free]
                ss = [ss[x] for x in free] if ss is not None else None
            if ss is None:
                items = [{"product_id": PRODUCT_IDS[j], "score": s} for j, s in zip(js, vs)]
            else:
                texts = REASONS.texts(ss, js, p.recent, bool(p.attributes))
                items = [{"product_id": PRODUCT_IDS[j], "score": s, "reason": t} for j, s, t in zip(js, vs, texts)]
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
