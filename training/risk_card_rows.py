"""Rows of the card risk job: IEEE-CIS rows -> contract records -> the stream's features, the
static tables' out-of-fold fill, the card sample and the chronological split.

Kept apart from ``training.risk_cards`` (fit, compare, export): everything here turns data into
the served feature rows, through the stream's own parser and ``stream.core.cardrisk``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from stream.core.cardrisk import CARD_FEATURES, CardEvent, replay_card_features
from stream.core.cardsignals import PROVIDER_SIGNALS
from stream.core.cardtables import TABLE_FEATURES, CardTables, fit_tables, out_of_fold, table_features, table_keys
from stream.core.contracts import parse_transaction
from stream.tools.cardfeed import IEEE_COLUMNS, ieee_record


def ieee_records(df: pd.DataFrame) -> list[dict]:
    """IEEE-CIS rows -> ``transactions`` contract records, by the demo/bench feed's own mapping."""
    cols = [df[c].astype(object).where(df[c].notna(), None).to_numpy() for c in IEEE_COLUMNS]
    sig = df[list(PROVIDER_SIGNALS)].to_numpy(np.float64)
    return [ieee_record(*row, signals=s) for row, s in zip(zip(*cols), sig)]


def card_events(records, progress=None) -> list[tuple[str, CardEvent]]:
    """(card id, CardEvent) of contract records, parsed by the stream's parser."""
    it = records if progress is None else progress(records, desc="parse card transactions", total=len(records))
    return [(t.account_id, t) for t in map(parse_transaction, it)]


def served_features(records, progress=None, tables: CardTables | dict | None = None) -> np.ndarray:
    """The served feature rows of time-ordered contract records: parsed by the stream's parser and
    replayed through ``stream.core.cardrisk`` with the model's tables (the train/serve parity reference)."""
    return replay_card_features(card_events(records, progress), tables)


TABLE_COLUMNS = slice(len(CARD_FEATURES) - len(TABLE_FEATURES), len(CARD_FEATURES))  # the last columns


def with_tables(x: np.ndarray, events, y: np.ndarray, fit: slice, score: slice) -> tuple[np.ndarray, CardTables]:
    """``x`` with its table columns filled for the rows ``fit`` (out of fold: no row sees its own
    label) and ``score`` (the tables fitted on all ``fit`` rows, as the stream applies them)."""
    keys = [table_keys(e) for _, e in events]
    labels = [int(v) for v in y]
    tables = fit_tables(keys[fit], labels[fit])
    x = x.copy()
    x[fit, TABLE_COLUMNS] = np.asarray(out_of_fold(keys[fit], labels[fit]), np.float32)
    x[score, TABLE_COLUMNS] = _served(events[score], tables)
    return x, tables


def _served(events, tables: CardTables) -> np.ndarray:
    """The table columns of these events as the stream serves them (the full tables)."""
    return np.asarray([table_features(tables, e) for _, e in events], np.float32)


def as_served(x: np.ndarray, events, tables: CardTables, rows: slice) -> np.ndarray:
    """Rows of ``x`` with their table columns as the stream serves them (the full tables, not the
    out-of-fold rates the fit used): the drift reference must describe what the worker will see,
    or the per-block out-of-fold values of a few-valued key (5 product codes) read as drift."""
    out = x[rows].copy()
    out[:, TABLE_COLUMNS] = _served(events[rows], tables)
    return out


def card_sample(df: pd.DataFrame, share: float) -> pd.DataFrame:
    """Whole cards (by a stable hash of ``card1``), so every kept card keeps its full history."""
    if share >= 1:
        return df
    h = np.array([zlib.crc32(str(int(v)).encode()) % 1000 for v in df["card1"]])
    return df.loc[h < share * 1000].reset_index(drop=True)


def chrono_split(n: int, train: float = 0.7, val: float = 0.1, t=None) -> tuple[slice, slice, slice]:
    """Train / validation / hold-out slices of time-ordered rows; given the times ``t``, each cut
    moves past rows sharing the boundary's time, so every later part is *strictly* later."""
    a, b = int(n * train), int(n * (train + val))
    if t is not None:
        t = np.asarray(t)
        a = int(np.searchsorted(t, t[a - 1], side="right")) if 0 < a < n else a
        b = int(np.searchsorted(t, t[b - 1], side="right")) if a < b < n else max(a, b)
    return slice(0, a), slice(a, b), slice(b, n)
