"""Helpers of the card tests (test_cardrisk, test_cardsignals): a card transaction as the
contract parses it, and a card's state after a history of events."""

from __future__ import annotations

from collections.abc import Iterable

from stream.core.cardevent import CardEvent
from stream.core.cardstate import CardState, advance_card
from stream.core.contracts import Transaction, parse_transaction

T0 = 1_512_000_000_000 + 12 * 3_600_000  # noon: the hour-of-day feature reads 12
HOUR = 3_600_000

#: a valid transaction without any card field (an old record); tests add what they look at
RECORD = {
    "event_id": "e1",
    "account_id": "13926-315",
    "ts": T0,
    "amount": 68.5,
    "currency": "USD",
    "merchant_category": "ecommerce",
    "channel": "ecom",
    "country": "US",
}


def transaction(**fields) -> Transaction:
    """``RECORD`` with ``fields`` over it, parsed by the stream's parser."""
    return parse_transaction({**RECORD, **fields})


def history(events: Iterable[CardEvent], st: CardState | None = None) -> CardState:
    """The card's state after ``events``, in order (from an empty card unless ``st`` is given)."""
    st = st or CardState()
    for e in events:
        st = advance_card(st, e)
    return st
