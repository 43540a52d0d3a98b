"""The demo's scripted customer journey: one user buys, browses and spends, and the demo shows how
each step changes their recommendations and the reasons given (issue 12's "tried as a new user").

Events go to the ordinary topics: views/buys on ``user-events``, card spend on ``transactions``
with the account linked to the user (``user_id`` next to ``account_id``, see ``stream.core.spend``),
which the risk job turns into a derived ``spend`` user event. Each loop uses a fresh user id, so
the journey starts again from an empty profile. Timestamps are synthetic (labelled so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson

from stream.core.spend import spend_words

STORY_PREFIX = "story-"
STEP_S = 4.0  # spend goes through the risk job first: give it time to arrive in order
USER, TXN = "user-events", "transactions"  # record kinds (``stream.pipelines``: InputContract.kind)
# (record kind, product or merchant category, action)
JOURNEY = (
    (USER, "motorcycle", "buy"),
    (USER, "delivery_van", "view"),
    (USER, "trailer", "view"),
    (USER, "trailer", "click"),
    (TXN, "fuel", "spend"),
    (TXN, "7033", "spend"),
    (USER, "caravan", "apply"),
    (TXN, "5551", "spend"),
)
BASE_TS = 1_700_000_000_000


def journey(loop: int) -> Iterator[tuple[str, bytes, bytes]]:
    """(record kind, key, value) for one pass of the journey by user ``story-<loop>``."""
    user = f"{STORY_PREFIX}{loop}"
    for i, (kind, what, action) in enumerate(JOURNEY):
        ts = BASE_TS + loop * 3_600_000 + i * 60_000
        if kind == USER:
            yield (
                kind,
                user.encode(),
                orjson.dumps(
                    {"v": 1, "user_id": user, "ts": ts, "product_id": what, "action": action, "event_id": f"{user}-{i}"}
                ),
            )
        else:
            acct = f"acct-{user}"
            yield (
                kind,
                acct.encode(),
                orjson.dumps(
                    {
                        "v": 1,
                        "event_id": f"{user}-t{i}",
                        "account_id": acct,
                        "user_id": user,
                        "ts": ts,
                        "amount": 60.0,
                        "currency": "EUR",
                        "merchant_category": what,
                        "channel": "pos",
                        "country": "NL",
                    }
                ),
            )


async def play(settings, loops: int = 1000) -> None:
    from aiokafka import AIOKafkaProducer

    from stream import pipelines

    p = AIOKafkaProducer(**settings.kafka_client_options(), acks="all", enable_idempotence=True)
    await p.start()
    try:
        for loop in range(loops):
            for kind, key, value in journey(loop):
                topic = pipelines.by_kind(kind).topic(settings)
                await (await p.send(topic, value=value, key=key))
                await asyncio.sleep(STEP_S)
    finally:
        await p.stop()


def describe(v: dict) -> tuple[str, str, str]:
    """A recommendation record as (step, holds, top 3 with reasons) for the demo's table."""
    t = v["trigger"]
    step = (
        f"spent at {spend_words(t['merchant_category'])}"
        if t.get("merchant_category")
        else f"{t['action']} {t['product_id']}"
    )
    lines = [f"{i['product_id']}: {i.get('reason', '')}" for i in v["items"][:3]]
    ranked = [i["product_id"] for i in v["items"]]
    if t["product_id"] in ranked[3:]:  # a single view moves a product up, not always into the top 3
        lines.append(f"({t['product_id']} now #{ranked.index(t['product_id']) + 1})")
    return step, ", ".join(v["holdings"]) or "-", "\n".join(lines)
