"""A batch's card-model input (stream.core.cardbatch): the events' own features next to their
remembered history parts give the bits of the whole rows, also when some rows were remembered
whole (by a worker from before the split) or as JSON floats."""

from __future__ import annotations

import random

import numpy as np

from stream.core.cardbatch import EVENT_COLUMNS, HISTORY_COLUMNS, HISTORY_WIDTH, card_matrix, remembered_fits
from stream.core.cardrisk import (
    CARD_FEATURES,
    EVENT_FEATURES,
    HISTORY_FEATURES,
    CardEvent,
    CardState,
    CardTables,
    advance_card,
    card_event_features,
    card_features,
    card_history_features,
)
from stream.core.rows import pack_row
from tests.unit.core.cards import HOUR, T0

TABLES = CardTables(0.03, {"card_group": {"1001": (0.2, 5.1)}, "email": {"gmail.com": (0.01, 7.3)}})


def events(n: int, seed: int = 3) -> list[tuple[str, CardEvent]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sig = rng.choice([None, {"C1": float(rng.randint(0, 9)), "C13": 2.5, "V13": 0.5}, {"C1": -0.0}])
        out.append(
            (
                f"c{rng.randint(0, 5)}",
                CardEvent(
                    T0 + i * rng.choice([60_000, HOUR]),
                    rng.choice([1.0, 20.004, 99.99, rng.random() * 500]),
                    product_code=rng.choice([None, "w", "C"]),
                    card_group=rng.choice([None, "1001", "87.0"]),
                    email_domain=rng.choice([None, "Gmail.com", "a.b"]),
                    device=rng.choice([None, "Windows", "SM-G"]),
                    billing_region=rng.choice([None, "315"]),
                    signals=sig,
                ),
            )
        )
    return out


def fold(evs):
    """(whole rows, history parts) of each event from its card's state before it."""
    states: dict[str, CardState] = {}
    whole, hist = [], []
    for key, e in evs:
        st = states.get(key) or CardState()
        whole.append(card_features(st, e, TABLES))
        hist.append(card_history_features(st, e))
        states[key] = advance_card(st, e)
    return whole, hist


def test_the_two_parts_are_the_whole_row_in_place():
    assert sorted([*EVENT_COLUMNS, *HISTORY_COLUMNS]) == list(range(len(CARD_FEATURES)))
    assert len(HISTORY_FEATURES) == HISTORY_WIDTH < len(EVENT_FEATURES)
    for (_key, e), row, hist in zip(events(60), *fold(events(60))):
        assert [row[i] for i in EVENT_COLUMNS] == card_event_features(e, TABLES)
        assert [row[i] for i in HISTORY_COLUMNS] == hist


def test_matrix_has_the_bits_of_the_packed_whole_rows_mixed_forms_included():
    evs = events(80)
    whole, hist = fold(evs)
    want = np.asarray(whole, dtype=np.float64).astype(np.float32)
    es = [e for _, e in evs]
    got = card_matrix([pack_row(h) for h in hist], es, TABLES)
    assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
    # every third remembered whole (packed or JSON floats, as older workers stored them), others as JSON floats
    mixed = [pack_row(w) if i % 3 == 0 else w if i % 3 == 1 else h for i, (w, h) in enumerate(zip(whole, hist))]
    assert all(remembered_fits(r) for r in mixed)
    assert card_matrix(mixed, es, TABLES).tobytes() == want.tobytes()
    assert card_matrix([], [], TABLES).shape == (0, len(CARD_FEATURES))


def test_a_row_of_another_width_does_not_fit():
    assert not remembered_fits(pack_row([0.5] * (HISTORY_WIDTH + 1)))
    assert not remembered_fits([0.5] * (len(CARD_FEATURES) - 1))


def test_event_part_of_a_batch_is_each_events_own():
    from stream.core.cardfields import EVENT_FEATURES, card_event_matrix

    es = [e for _, e in events(50, seed=9)]
    got = card_event_matrix(es, TABLES)
    assert got.shape == (50, len(EVENT_FEATURES)) and got.dtype == np.float64
    assert [list(r) for r in got] == [card_event_features(e, TABLES) for e in es]
    assert card_event_matrix([], TABLES).shape == (0, len(EVENT_FEATURES))


def test_table_encodings_of_a_batch_are_each_events_table_features(monkeypatch):
    """``table_matrix`` (one key at a time for the batch) = ``table_features`` per event (one dict of
    fields per event), unseen and missing values included, and with a key of two fields."""
    from stream.core import cardtables

    es = [e for _, e in events(80, seed=11)]
    tables = CardTables(
        0.04, {"card_group": {"1001": (0.2, 5.1), "": (0.5, 2.0)}, "email": {"gmail.com": (0.01, 7.3)}, "product": {}}
    )
    got = cardtables.table_matrix(tables, es)
    assert got.tolist() == [cardtables.table_features(tables, e) for e in es]
    assert cardtables.table_matrix(CardTables(), es).tolist() == [
        cardtables.table_features(CardTables(), e) for e in es
    ]
    assert cardtables.table_matrix(tables, []).shape == (0, len(cardtables.TABLE_FEATURES))
    monkeypatch.setattr(cardtables, "_ONE_FIELD_KEYS", None)
    monkeypatch.setattr(
        cardtables, "TABLE_KEYS", {**cardtables.TABLE_KEYS, "card_group": ("card_group", "billing_region")}
    )
    joined = CardTables(0.04, {"card_group": {"1001-315": (0.3, 4.0), "-": (0.6, 1.0)}})
    assert cardtables.table_matrix(joined, es).tolist() == [cardtables.table_features(joined, e) for e in es]


def test_all_remembered_fit_is_remembered_fits_of_every_row():
    from stream.core.cardbatch import all_remembered_fit

    part, whole = pack_row([0.5] * HISTORY_WIDTH), pack_row([0.5] * len(CARD_FEATURES))
    cases = [
        [],
        [part, part],
        [part, whole],
        [part, [0.5] * len(CARD_FEATURES)],
        [part, [0.5] * HISTORY_WIDTH],
        [part, pack_row([0.5] * (HISTORY_WIDTH + 1))],
        [part, [0.5] * len(part)],  # a list as long as a packed part is no packed part
        [part, "x" * (len(part) + 1)],
    ]
    for rows in cases:
        assert all_remembered_fit(rows) == all(map(remembered_fits, rows)), rows
    assert all_remembered_fit([part, whole]) and not all_remembered_fit([part, [0.5] * len(part)])
