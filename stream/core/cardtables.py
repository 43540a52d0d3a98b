"""Static tables learned offline and applied live: how often each card group, billing region,
e-mail domain, device and product code was seen in the training months, and its smoothed fraud
rate.

Published only as aggregates: the tables ship in the repository's manifest, and the IEEE-CIS rows
they come from may not be republished. So there is no per-card table (with a card's count and
smoothed rate its fraud count can be read back), and a value enters a table only with at least
``MIN_ROWS`` fitting rows; rarer values get the prior and count 0, like an unseen one.

They are model parameters, not state: training fits them on its own rows only (``fit_tables``)
and exports them with the model (the model card's ``extra``); the stream reads them and never
updates them. The fraud rates of training rows themselves come out of fold (``out_of_fold``:
each time block encoded by the tables of the other blocks), so no row sees its own label. On
the IEEE-CIS validation days (half of the cards) they raised the stream's own features from
PR-AUC 0.288 to 0.33 (docs/risk.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, itemgetter

import numpy as np

from stream.core.cardevent import CardEvent
from stream.core.cardstate import normal_email, normal_product

# key name -> the event fields it joins (missing fields kept as empty slots, like ``card_id``)
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "card_group": ("card_group",),
    "region": ("billing_region",),
    "email": ("email",),
    "device": ("device",),
    "product": ("product",),
}
TABLE_FEATURES: tuple[str, ...] = tuple(f"{k}_{s}" for k in TABLE_KEYS for s in ("fraud_rate", "log_count"))
TABLE_LABELS: dict[str, str] = {
    **{f"{k}_fraud_rate": f"fraud rate of this {k.replace('_', ' ')} in the training months" for k in TABLE_KEYS},
    **{f"{k}_log_count": f"how often this {k.replace('_', ' ')} was seen in the training months" for k in TABLE_KEYS},
}
SMOOTHING = 20.0  # prior weight in rows: a key seen a few times stays near the overall fraud rate
MIN_ROWS = 100  # fitting rows a value needs to be published in a table (an aggregate, not a record)


# a table key's field -> how to read it from an event (None or "" when the event has none)
_READ: dict[str, Callable[[CardEvent], str | None]] = {
    "card_group": attrgetter("card_group"),
    "billing_region": attrgetter("billing_region"),
    "email": normal_email,
    "device": attrgetter("device"),
    "product": normal_product,
}


def _fields(e: CardEvent) -> dict[str, str]:
    return {name: read(e) or "" for name, read in _READ.items()}


# every key one field (today's TABLE_KEYS): the keys are those fields' values, picked in C
_ONE_FIELD_KEYS = (
    itemgetter(*(parts[0] for parts in TABLE_KEYS.values()))
    if len(TABLE_KEYS) > 1 and all(len(parts) == 1 for parts in TABLE_KEYS.values())
    else None
)


def table_keys(e: CardEvent) -> tuple[str, ...]:
    """The event's value of each table key (order = TABLE_KEYS)."""
    f = _fields(e)
    if _ONE_FIELD_KEYS is not None:
        return _ONE_FIELD_KEYS(f)
    # a one-field key is that field's value (what the join of one part gives, without the join)
    return tuple(f[parts[0]] if len(parts) == 1 else "-".join(f[p] for p in parts) for parts in TABLE_KEYS.values())


@dataclass(frozen=True, slots=True)
class CardTables:
    """Per key name: value -> (smoothed fraud rate, log1p of its training count); ``prior`` for unseen values."""

    prior: float = 0.0
    tables: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"prior": self.prior, "tables": {k: {v: list(p) for v, p in t.items()} for k, t in self.tables.items()}}

    @classmethod
    def from_dict(cls, d: dict | None) -> CardTables:
        if not d:
            return cls()
        return cls(float(d["prior"]), {k: {v: (p[0], p[1]) for v, p in t.items()} for k, t in d["tables"].items()})


def table_features(tables: CardTables, e: CardEvent) -> list[float]:
    """The event's encodings (order = TABLE_FEATURES); an unseen value gets the prior rate and count 0."""
    unseen = (tables.prior, 0.0)
    out: list[float] = []
    get = tables.tables.get
    for name, value in zip(TABLE_KEYS, table_keys(e)):
        table = get(name)
        out += table.get(value, unseen) if table is not None else unseen
    return out


def table_matrix(tables: CardTables, events: Sequence[CardEvent], known: dict[str, list] | None = None) -> np.ndarray:
    """(N, len(TABLE_FEATURES)) float64: each event's ``table_features``, one key at a time for
    the whole batch: each value's row of the key's table (``_lookup``) by a C-level ``map`` and one
    numpy take, instead of a dict of fields and a list of pairs per event. ``known``: fields the
    caller already read for the batch (``_READ`` of each event, e.g. the normalised e-mails)."""
    known = known or {}
    out = np.empty((len(events), len(TABLE_FEATURES)))
    if not events:
        return out
    for j, (parts, (rows, pairs)) in enumerate(zip(TABLE_KEYS.values(), _lookup(tables))):
        columns = [[v or "" for v in (known[p] if p in known else map(_READ[p], events))] for p in parts]
        values = columns[0] if len(parts) == 1 else ["-".join(vs) for vs in zip(*columns)]
        out[:, 2 * j : 2 * j + 2] = pairs[
            np.fromiter(map(rows.get, values, repeat(len(pairs) - 1)), np.intp, len(values))
        ]
    return out


_LOOKUPS: dict[int, tuple[CardTables, list]] = {}


def _lookup(tables: CardTables) -> list[tuple[dict[str, int], np.ndarray]]:
    """Per key (order = TABLE_KEYS): value -> row, and the (rows + 1, 2) float64 pairs, the last
    row the unseen pair. Built once per tables object (the served model's, kept while it serves)."""
    hit = _LOOKUPS.get(id(tables))
    if hit is not None and hit[0] is tables:
        return hit[1]
    unseen = (tables.prior, 0.0)
    out = []
    for name in TABLE_KEYS:
        table = tables.tables.get(name) or {}
        rows = {v: i for i, v in enumerate(table)}
        out.append((rows, np.array([*table.values(), unseen], dtype=np.float64).reshape(len(table) + 1, 2)))
    if len(_LOOKUPS) >= 4:
        _LOOKUPS.clear()
    _LOOKUPS[id(tables)] = (tables, out)
    return out


def fit_tables(
    keys: Sequence[tuple[str, ...]], labels: Sequence[int], smoothing: float = SMOOTHING, min_rows: int = MIN_ROWS
) -> CardTables:
    """Tables from training rows: ``keys`` as ``table_keys`` gives them, ``labels`` 1 = fraud; a
    value with fewer than ``min_rows`` rows is left out (it reads as unseen)."""
    import math

    n = len(labels)
    prior = sum(labels) / n if n else 0.0
    tables: dict[str, dict[str, tuple[float, float]]] = {}
    for j, name in enumerate(TABLE_KEYS):
        acc: dict[str, list[int]] = {}
        for k, y in zip(keys, labels):
            a = acc.setdefault(k[j], [0, 0])
            a[0] += int(y)
            a[1] += 1
        tables[name] = {
            v: (round((s + smoothing * prior) / (c + smoothing), 6), round(math.log1p(c), 6))
            for v, (s, c) in acc.items()
            if c >= min_rows
        }
    return CardTables(round(prior, 6), tables)


def out_of_fold(
    keys: Sequence[tuple[str, ...]], labels: Sequence[int], folds: int = 5, min_rows: int = MIN_ROWS
) -> list[list[float]]:
    """Encodings of training rows (time-ordered) without their own labels: the rows are cut into
    ``folds`` consecutive time blocks and each block is encoded by tables fitted on the others
    (counts as in the full table, so a row's count does not depend on its block)."""
    n = len(labels)
    full = fit_tables(keys, labels, min_rows=min_rows)
    cuts = [n * i // folds for i in range(folds + 1)]
    rows: list[list[float]] = []
    for a, b in zip(cuts, cuts[1:]):
        rest = fit_tables([*keys[:a], *keys[b:]], [*labels[:a], *labels[b:]], min_rows=min_rows)
        for k in keys[a:b]:
            row: list[float] = []
            for j, name in enumerate(TABLE_KEYS):
                rate = rest.tables[name].get(k[j], (rest.prior, 0.0))[0]
                row += [rate, full.tables[name].get(k[j], (full.prior, 0.0))[1]]
            rows.append(row)
    return rows
