"""Card-level risk features from raw transaction events: shared by training and the stream.

The real-data risk model (trained on IEEE-CIS / Vesta card transactions) sees only what a live
stream has: the event's own fields (``CardEvent``: amount, time, product code, card/billing
codes, e-mail domain, device, the processor's signals) and a per-card state (``CardState``,
``stream.core.cardstate``) kept in the fenced store. This module holds the feature list, their
labels for reasons, and the function the worker calls per event (``card_step``); the event, the
state and the processor's signals each live in their own module. As with
``stream.core.features.AccountState``, the history features read the state *before* the event and
``advance_card`` returns the state after it; ``card_step`` is the two at once (what both read from
the event, read once), and ``replay_card_features`` runs a time-ordered history through it (the
training path and the parity reference), so no feature can peek ahead.

The card id is built from card and billing-address columns (``card_id``): the data has no
account number, and ``card1`` + ``addr1`` is the closest stable key that measured best. (The
usual stronger client key of this data adds the account-open day ``TransactionDT/86400 - D1``;
the rows shipped in the PyPI wheel carry no ``D`` column, so it cannot be built here.)
Per card the state keeps running amount moments, the times and amounts of the last 48
transactions, capped lists of distinct e-mails / devices / products / regions / card variants,
the first-seen time and the last value of a few processor counts; every list is capped, so the
state is bounded.

No feature grows with the stream's own age (a card's transaction count so far, days since it
was first seen): those drift between the training months and later ones, and dropping them
raised hold-out PR-AUC from 0.10 to 0.21 on half of the IEEE-CIS cards. Rates (transactions
per day since first seen) are kept: they do not grow with age.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from stream.core.cardcodes import (  # noqa: F401  (re-exported: the tables belong to these features)
    DEVICE_FAMILIES,
    EMAIL_GROUPS,
    MISSING,
    device_family,
    email_group,
    numeric_code,
)
from stream.core.cardevent import CardEvent, card_id  # noqa: F401  (re-exported: the stream's entry points)
from stream.core.cardfields import EVENT_FEATURES, EVENT_STREAM_FEATURES, PRODUCT_CODES, card_event_matrix
from stream.core.cardsignals import DELTA_SIGNALS, SIGNAL_FEATURES, SIGNAL_LABELS, delta_values, signal_deltas
from stream.core.cardstate import (  # noqa: F401  (advance_card re-exported with the features)
    DAY_MS,
    HOUR_MS,
    WEEK_MS,
    CardState,
    advance_card,
    advance_known,
    linked_values,
    normal_email,
    normal_product,
)
from stream.core.cardtables import TABLE_FEATURES, TABLE_LABELS, CardTables

# what it says against the card's past (the state before it)
HISTORY_STREAM_FEATURES: tuple[str, ...] = (
    "first_transaction",
    "log_secs_since_last",
    "txn_count_1h",
    "txn_count_24h",
    "txn_count_7d",
    "spend_24h_ratio",
    "txn_per_day",
    "amount_z",
    "amount_ratio",
    "amount_sd",
    "amount_vs_last",
    "same_amount_as_last",
    "same_amount_7d",
    "distinct_emails",
    "distinct_devices",
    "distinct_products",
    "distinct_regions",
    "distinct_variants",
    "new_email",
    "new_device",
    "new_product",
    "new_region",
    "new_variant",
)
STREAM_FEATURES: tuple[str, ...] = EVENT_STREAM_FEATURES + HISTORY_STREAM_FEATURES
CARD_FEATURES: tuple[str, ...] = STREAM_FEATURES + SIGNAL_FEATURES + TABLE_FEATURES
DELTA_FEATURES: tuple[str, ...] = tuple(f"delta_{s}" for s in DELTA_SIGNALS)
# the features of the card's history (computed from its state, remembered for a redelivery) and
# those of the event alone (computed again from the record), in CARD_FEATURES order each
HISTORY_FEATURES: tuple[str, ...] = HISTORY_STREAM_FEATURES + DELTA_FEATURES
EVENT_COLUMNS = np.array([CARD_FEATURES.index(f) for f in EVENT_FEATURES])
HISTORY_COLUMNS = np.array([CARD_FEATURES.index(f) for f in HISTORY_FEATURES])
NO_TABLES = CardTables()

CARD_FEATURE_LABELS: dict[str, str] = {
    "log_amount": "large transaction amount",
    "amount_cents": "unusual cents in the amount (often a converted currency)",
    "hour_of_day": "time of day",
    **{f"product_{p}": f"product code {p}" for p in PRODUCT_CODES},
    "card_group": "card number group",
    "card_subgroup": "card sub-group",
    "card_type": "card type",
    "card_country": "card issuing country",
    "billing_region": "billing region",
    "billing_country": "billing country",
    "email_group": "e-mail provider",
    "device_family": "device type",
    "first_transaction": "first transaction seen for this card",
    "log_secs_since_last": "time since the card's previous transaction",
    "txn_count_1h": "many transactions in the last hour",
    "txn_count_24h": "many transactions in the last 24 hours",
    "txn_count_7d": "many transactions in the last 7 days",
    "spend_24h_ratio": "high spend in the last 24 hours versus usual",
    "txn_per_day": "transactions per day since the card was first seen",
    "amount_z": "amount unusual for this card",
    "amount_ratio": "amount versus the card's average",
    "amount_sd": "how much this card's amounts vary",
    "amount_vs_last": "amount versus the card's previous transaction",
    "same_amount_as_last": "same amount as the previous transaction",
    "same_amount_7d": "same amount repeated in the last 7 days",
    "distinct_emails": "many e-mail addresses used with this card",
    "distinct_devices": "many devices used with this card",
    "distinct_products": "many product types bought with this card",
    "distinct_regions": "many billing regions used with this card",
    "distinct_variants": "many card variants behind this card number group",
    "new_email": "e-mail address new for this card",
    "new_device": "device new for this card",
    "new_product": "product type new for this card",
    "new_region": "billing region new for this card",
    "new_variant": "card variant new for this card",
    **SIGNAL_LABELS,
    **TABLE_LABELS,
}


def card_event_features(e: CardEvent, tables: CardTables = NO_TABLES) -> list[float]:
    """What the transaction alone gives (order = EVENT_FEATURES; ``stream.core.cardfields``
    computes them for a batch at once)."""
    return card_event_matrix([e], tables)[0].tolist()


def card_history_features(st: CardState, e: CardEvent) -> list[float]:
    """What the transaction says against the card's state *before* it (order = HISTORY_FEATURES):
    velocities, the amount against the card's usual, what is new for the card, signal growth."""
    return history_known(st, e, math.log1p(e.amount), linked_values(e), delta_values(e.signals))


def card_step(st: CardState, e: CardEvent) -> tuple[CardState, list[float]]:
    """(the card's state after ``e``, ``e``'s history features against ``st``): what the stream
    and ``replay_card_features`` run per event. What both halves read from the event (its log
    amount, linked fields and signal counts) is computed once."""
    log_amount, linked, now = math.log1p(e.amount), linked_values(e), delta_values(e.signals)
    return advance_known(st, e, log_amount, linked, now), history_known(st, e, log_amount, linked, now)


def history_known(
    st: CardState, e: CardEvent, log_amount: float, linked: tuple, now: list[float] | None
) -> list[float]:
    """``card_history_features`` given what ``card_step`` computed from the event once."""
    ts, amount = e.ts, e.amount
    n_1h = n_24h = n_7d = spend_24h = same_7d = 0.0
    # the windows nest (1 h within 24 h within 7 days), so each (ts, amount) is tested from the
    # widest down; the spend sum adds the same amounts in the same order as one test per window.
    # Bounds on the time itself (integer milliseconds: exact) instead of an age per entry
    week, day, hour = ts - WEEK_MS, ts - DAY_MS, ts - HOUR_MS
    for t, a in zip(st.recent_ts, st.recent_amounts):
        if week <= t <= ts:
            n_7d += 1
            same_7d += abs(a - amount) < 0.005
            if t >= day:
                n_24h += 1
                spend_24h += a
                if t >= hour:
                    n_1h += 1
    n = st.n
    if n:
        mean = st.log_sum / n
        var = max(st.log_sq / n - mean * mean, 0.0)
        z = (log_amount - mean) / math.sqrt(var + 0.25)  # +0.25: a prior spread for short histories
        usual = math.expm1(mean)
        ratio = amount / max(usual, 0.01)
        gap = math.log1p(max(ts - cast(int, st.last_ts), 0) / 1000.0)  # set once n > 0
        last_amount = st.last_amount
        same = float(last_amount is not None and abs(amount - last_amount) < 0.005)
        sd = math.sqrt(var) if n >= 2 else MISSING
        vs_last = min(amount / max(last_amount or 0.01, 0.01), 100.0)
        first = cast(int, st.first_ts if st.first_ts is not None else st.last_ts)  # set once n > 0
        per_day = n / max((ts - first) / DAY_MS, 1.0)
    else:
        z, ratio, gap, same, usual, sd, vs_last, per_day = 0.0, 1.0, MISSING, 0.0, amount, MISSING, 1.0, 0.0
    email, device, product, region, variant = linked
    emails, devices, products, regions, variants = st.emails, st.devices, st.products, st.regions, st.variants
    # per linked field: the distinct count so far, and 1 if the value is new for a card that has
    # history (a missing one is not new)
    return [
        float(n == 0),
        gap,
        n_1h,
        n_24h,
        n_7d,
        math.log1p((spend_24h + amount) / max(usual, 1.0)),
        min(per_day, 1000.0),
        max(-10.0, min(10.0, z)),
        min(ratio, 100.0),
        sd,
        vs_last,
        same,
        same_7d,
        float(len(emails)),
        float(len(devices)),
        float(len(products)),
        float(len(regions)),
        float(len(variants)),
        float(bool(emails) and email is not None and email not in emails),
        float(bool(devices) and device is not None and device not in devices),
        float(bool(products) and product is not None and product not in products),
        float(bool(regions) and region is not None and region not in regions),
        float(bool(variants) and variant is not None and variant not in variants),
        *signal_deltas(now, st.signals),
    ]


_E1 = len(EVENT_STREAM_FEATURES)
_E2 = _E1 + len(SIGNAL_FEATURES) - len(DELTA_FEATURES)
_H1 = len(HISTORY_STREAM_FEATURES)


def card_features(st: CardState, e: CardEvent, tables: CardTables = NO_TABLES) -> list[float]:
    """Features of one transaction given the card's state *before* it and the served model's
    static tables (``stream.core.cardtables``; order = CARD_FEATURES): the event part and the
    history part put in place."""
    ev, hist = card_event_features(e, tables), card_history_features(st, e)
    return ev[:_E1] + hist[:_H1] + ev[_E1:_E2] + hist[_H1:] + ev[_E2:]


def replay_card_features(events, tables: CardTables | dict | None = None) -> np.ndarray:
    """Features for a time-ordered iterable of (card id, CardEvent): each row from the state its
    card had just before it, through the same functions the stream calls (history per event, the
    event's own features for all at once); ``tables`` as the model card's ``extra["tables"]``
    carries them (or none: unseen everywhere)."""
    tab = tables if isinstance(tables, CardTables) else CardTables.from_dict(tables)
    events = list(events)
    states: dict[str, CardState] = {}
    history = []
    for key, e in events:
        states[key], row = card_step(states.get(key) or CardState(), e)
        history.append(row)
    x = np.empty((len(events), len(CARD_FEATURES)))
    x[:, EVENT_COLUMNS] = card_event_matrix([e for _, e in events], tab)
    x[:, HISTORY_COLUMNS] = np.asarray(history, dtype=np.float64).reshape(len(events), len(HISTORY_FEATURES))
    return x.astype(np.float32)
