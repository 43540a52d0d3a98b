"""A batch's card-model input: each event's own features next to its remembered history part.

The risk job remembers, per event, only what the card's state gave (``card_history_features``,
packed as float32 by ``stream.core.rows``): a redelivered record is the same bytes at the same
offset and a resent event id carries its fields again, so the event's own features
(``card_event_features``: amount, hour, codes, signals, table encodings) are computed again for
every event of a batch, fresh or answered from memory, and only 30 of the 82 features are stored
twice per event (dedupe ids and redelivery snapshots) in every card's state. A full row remembered
by a worker from before this split (every feature, packed or as JSON floats) is used as it is.

Same bits as one packed full row: the event part goes into the float32 matrix by numpy's
float -> float32 cast, the one ``pack_row`` gives (``stream.core.rows``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stream.core.cardevent import CardEvent
from stream.core.cardfields import card_event_matrix
from stream.core.cardrisk import CARD_FEATURES, EVENT_COLUMNS, HISTORY_COLUMNS, HISTORY_FEATURES
from stream.core.cardtables import CardTables
from stream.core.rows import fits, pack_row, rows_matrix

HISTORY_WIDTH = len(HISTORY_FEATURES)


def _blocks(columns: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Runs of consecutive columns as ((first, end) in the row, (first, end) in the part): a copy
    by slices, not a scatter by index."""
    out, start = [], 0
    for k in range(1, len(columns) + 1):
        if k == len(columns) or columns[k] != columns[k - 1] + 1:
            out.append(((int(columns[start]), int(columns[k - 1]) + 1), (start, k)))
            start = k
    return out


EVENT_BLOCKS = _blocks(EVENT_COLUMNS)


def remembered_fits(row) -> bool:
    """Whether a remembered row can be answered: a history part, or a full row of today's features."""
    return fits(row, HISTORY_WIDTH) or fits(row, len(CARD_FEATURES))


_PACKED_HISTORY = frozenset({len(pack_row([0.0] * HISTORY_WIDTH))})  # the length of every packed history part
_STR = frozenset({str})


def all_remembered_fit(rows: Sequence) -> bool:
    """``remembered_fits`` of every row; the usual batch (every row a packed history part) is
    proved by two C-level passes instead of a call per row."""
    if set(map(len, rows)) <= _PACKED_HISTORY and set(map(type, rows)) <= _STR:
        return True
    return all(map(remembered_fits, rows))


def card_matrix(remembered: Sequence, events: Sequence[CardEvent], tables: CardTables) -> np.ndarray:
    """(N, len(CARD_FEATURES)) float32: row i from ``events[i]``'s own features and the history
    part ``remembered[i]`` (or ``remembered[i]`` itself when it is a full row)."""
    n = len(events)
    x = np.empty((n, len(CARD_FEATURES)), dtype=np.float32)
    if n == 0:
        return x
    own = card_event_matrix(events, tables)
    for (a, b), (c, d) in EVENT_BLOCKS:
        x[:, a:b] = own[:, c:d]
    full = [i for i, row in enumerate(remembered) if not fits(row, HISTORY_WIDTH)]
    if not full:
        x[:, HISTORY_COLUMNS] = rows_matrix(remembered, HISTORY_WIDTH)
        return x
    gone = set(full)
    part = [i for i in range(n) if i not in gone]
    x[np.ix_(np.array(part, dtype=np.intp), HISTORY_COLUMNS)] = rows_matrix(
        [remembered[i] for i in part], HISTORY_WIDTH
    )
    x[full] = rows_matrix([remembered[i] for i in full], len(CARD_FEATURES))
    return x
