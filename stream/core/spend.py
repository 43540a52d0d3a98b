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

from stream.core.contracts import SCHEMA_VERSION, Transaction

# Merchant category (the stream's names, and ISO 18245 MCCs for feeds that carry codes) -> product.
# Only categories that plainly imply the insured object; the Caravan catalogue has no travel or
# health product, so travel, health and pharmacy spend map to nothing.
SPEND_PRODUCTS: dict[str, str] = {
    "fuel": "car", "5541": "car", "5542": "car",          # service stations
    "car_dealer": "car", "5511": "car", "5521": "car",    # new and used car dealers
    "5571": "motorcycle",                                 # motorcycle shops and dealers
    "5561": "trailer",                                    # camper, recreational and utility trailer dealers
    "7033": "caravan", "campground": "caravan",           # trailer parks and campgrounds
    "5551": "boat", "4457": "boat",                       # boat dealers, boat rentals
    "5940": "bicycle",                                    # bicycle shops
    "electronics": "property", "5732": "property",       # home contents (Caravan's AINBOED)
    "5712": "property",                                   # furniture
}


def spend_event(t: Transaction) -> dict | None:
    """The derived user-event for a linked transaction in a mapped category, else ``None``."""
    product = SPEND_PRODUCTS.get(t.merchant_category)
    if t.user_id is None or product is None:
        return None
    return {"v": SCHEMA_VERSION, "user_id": t.user_id, "ts": t.ts, "product_id": product, "action": "spend",
            "event_id": f"txn:{t.event_id}", "merchant_category": t.merchant_category}
