"""Card spend as a recommendation signal: which merchant categories say something about a product.

A transaction links to a user when the record carries ``user_id`` next to ``account_id`` (the
card issuer knows the account holder; records with only one of the two link nobody, because a
bare ``user_id`` is read as the account id by the transaction contract). When it links and its
merchant category maps to a catalogue product, the risk job emits a derived ``user-events``
record with action ``spend``, keyed by the user and inside the same Kafka transaction as the
risk outputs; the recommend job folds it into the user's fenced profile like any user event.
See docs/recommendations.md for the design and the mapping's rationale.
"""

from __future__ import annotations

from typing import cast

import orjson

from stream.core.contracts import SCHEMA_VERSION, Transaction
from stream.core.records import OutputRecord, SourceRecord

# Merchant category (the stream's names, and ISO 18245 MCCs for feeds that carry codes).
# Only categories that plainly imply the insured object; the Caravan catalogue has no travel or
# health product, so travel, health and pharmacy spend map to nothing.
SPEND_PRODUCTS: dict[str, tuple[str, str]] = {  # category -> (product, words for the reason)
    "fuel": ("car", "fuel"),
    "5541": ("car", "service stations"),
    "5542": ("car", "fuel dispensers"),
    "car_dealer": ("car", "a car dealer"),
    "5511": ("car", "a car dealer"),
    "5521": ("car", "a used-car dealer"),
    "5571": ("motorcycle", "a motorcycle dealer"),
    "5561": ("trailer", "a trailer dealer"),
    "7033": ("caravan", "a campground"),
    "campground": ("caravan", "a campground"),
    "5551": ("boat", "a boat dealer"),
    "4457": ("boat", "boat rental"),
    "5940": ("bicycle", "a bicycle shop"),
    "electronics": ("property", "electronics"),
    "5732": ("property", "electronics"),  # home contents (AINBOED)
    "5712": ("property", "furniture"),
}


def spend_words(category: str) -> str:
    """What a reason says the user spent on."""
    return SPEND_PRODUCTS[category][1] if category in SPEND_PRODUCTS else category.replace("_", " ")


def spend_event(t: Transaction) -> dict | None:
    """The derived user-event for a linked transaction in a mapped category, else ``None``."""
    if t.user_id is None or t.merchant_category not in SPEND_PRODUCTS:
        return None
    product = SPEND_PRODUCTS[t.merchant_category][0]
    return {
        "v": SCHEMA_VERSION,
        "user_id": t.user_id,
        "ts": t.ts,
        "product_id": product,
        "action": "spend",
        "event_id": f"txn:{t.event_id}",
        "merchant_category": t.merchant_category,
    }


def spend_record(topic: str, src: SourceRecord, t: Transaction) -> OutputRecord | None:
    """The derived event as an output of the transaction's own batch: keyed and partitioned by the
    user (so the recommend job's per-user fence sees one partition), published in the source
    partition's transaction (so it exists exactly once per transaction, like the risk score)."""
    ev = spend_event(t)
    if ev is None:
        return None
    user = cast(str, t.user_id)  # spend_event is None without a user_id
    return OutputRecord(topic, user.encode(), orjson.dumps({**ev, "source": src.source()}), src.partition, by_key=True)
