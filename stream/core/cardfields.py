"""The card features a transaction's own fields give (amount, hour, product and card codes, e-mail
and device groups, the processor's signals, the served model's table encodings), computed for a
whole batch at once: column by column, each column one C-level pass (``map`` over cached code
lookups, numpy for the hour) instead of one 52-value Python list per event.

Kept apart from ``stream.core.cardrisk`` (the feature list and the history features) because
this part needs no card state: the risk job computes it for every event of a batch, including
redelivered and resent ones, and remembers only the history part (``stream.core.cardbatch``).
Training reaches it through ``cardrisk.replay_card_features``, so what is served is what was
trained. The values are those of the per-event expressions they replaced (float64, same
operations; ``tests/unit/core/test_cardbatch.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain, repeat
from operator import attrgetter

import numpy as np

from stream.core.cardcodes import device_family, email_group, numeric_code
from stream.core.cardevent import CardEvent
from stream.core.cardsignals import PROVIDER_SIGNALS, signal_values
from stream.core.cardstate import HOUR_MS, normal_email, normal_product
from stream.core.cardtables import TABLE_FEATURES, CardTables, table_matrix

PRODUCT_CODES = ("W", "C", "R", "H", "S")
CODE_FIELDS = ("card_group", "card_subgroup", "card_type", "card_country", "billing_region", "billing_country")

# what the event itself says (its amount, time and card fields), then its signals and table encodings
EVENT_STREAM_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_cents",
    "hour_of_day",
    *(f"product_{p}" for p in PRODUCT_CODES),
    *CODE_FIELDS,
    "email_group",
    "device_family",
)
EVENT_FEATURES: tuple[str, ...] = EVENT_STREAM_FEATURES + tuple(f"sig_{s}" for s in PROVIDER_SIGNALS) + TABLE_FEATURES

# a normalised product code -> its row of the one-hot block (the last row, all zeros: any other, or none)
_PRODUCT_ROW: dict[str | None, int] = {p: i for i, p in enumerate(PRODUCT_CODES)}
_ONE_HOT = np.vstack([np.eye(len(PRODUCT_CODES)), np.zeros(len(PRODUCT_CODES))])
_OTHER = len(PRODUCT_CODES)
_FIELDS = {name: attrgetter(name) for name in (*CODE_FIELDS, "amount", "ts", "device", "signals")}
_N_STREAM = len(EVENT_STREAM_FEATURES)
_N_TABLES = _N_STREAM + len(PROVIDER_SIGNALS)  # the first table column


def card_event_matrix(events: Sequence[CardEvent], tables: CardTables) -> np.ndarray:
    """(N, len(EVENT_FEATURES)) float64: each event's own features, in EVENT_FEATURES order."""
    n = len(events)
    out = np.empty((n, len(EVENT_FEATURES)))
    if n == 0:
        return out
    amounts = list(map(_FIELDS["amount"], events))
    out[:, 0] = list(map(math.log1p, amounts))
    out[:, 1] = [round(a % 1.0, 3) for a in amounts]
    out[:, 2] = (np.fromiter(map(_FIELDS["ts"], events), np.int64, n) // HOUR_MS) % 24
    products, emails = list(map(normal_product, events)), list(map(normal_email, events))
    rows = np.fromiter(map(_PRODUCT_ROW.get, products, repeat(_OTHER)), np.intp, n)
    out[:, 3:8] = _ONE_HOT[rows]
    for j, name in enumerate(CODE_FIELDS, 8):
        out[:, j] = list(map(numeric_code, map(_FIELDS[name], events)))
    out[:, 14] = list(map(email_group, emails))
    out[:, 15] = list(map(device_family, map(_FIELDS["device"], events)))
    signals = chain.from_iterable(map(signal_values, map(_FIELDS["signals"], events)))
    out[:, _N_STREAM:_N_TABLES] = np.fromiter(signals, np.float64, n * len(PROVIDER_SIGNALS)).reshape(n, -1)
    out[:, _N_TABLES:] = table_matrix(tables, events, {"product": products, "email": emails})
    return out
