"""Provider signals: numeric risk fields a card processor attaches to a transaction.

Real card feeds arrive enriched: the IEEE-CIS / Vesta rows carry counts of things linked to
the card across the processor's network (``C1``..``C14``), engineered ``V`` fields and identity
codes (``id_*``). A stream cannot recompute them (they see other merchants' traffic), but it
receives them with each event, in the optional ``signals`` object of a ``transactions`` record.
The served card model reads the names below (missing -> -1, like every missing card code) and,
per card, how much each count grew since the card's previous transaction (``DELTA_SIGNALS``;
the last values are kept in the card's state).

The ``V`` subset is the one that carried signal before the hold-out: of the 81 ``V`` columns in
the data, those whose permutation lowered validation PR-AUC (days 121-141) by at least 0.0015
for a GBM fitted on days 1-121 with every column (half the cards); the hold-out (days 141-182)
took no part in choosing them. All 81 together did not raise hold-out PR-AUC (0.493 against
0.498 without any ``V``).
"""

from __future__ import annotations

import math

COUNT_SIGNALS = tuple(f"C{i}" for i in range(1, 15))
VESTA_SIGNALS = ("V13", "V19", "V308", "V310", "V312", "V313", "V317", "V323")
IDENTITY_SIGNALS = ("id_13", "id_17", "id_19", "id_20")
PROVIDER_SIGNALS: tuple[str, ...] = COUNT_SIGNALS + VESTA_SIGNALS + IDENTITY_SIGNALS
DELTA_SIGNALS = ("C1", "C2", "C5", "C9", "C11", "C13", "C14")
MAX_SIGNALS = 256  # a record may name at most this many signals (the contract refuses more)
_MISSING = -1.0
_MISSINGS = (_MISSING,) * len(PROVIDER_SIGNALS)
_DELTA_MISSINGS = (_MISSING,) * len(DELTA_SIGNALS)
_FLOAT = {float}

SIGNAL_LABELS: dict[str, str] = {
    **{f"sig_{c}": f"processor count {c} linked to the card" for c in COUNT_SIGNALS},
    **{f"sig_{v}": f"processor risk field {v}" for v in VESTA_SIGNALS},
    **{f"sig_{i}": f"processor identity code {i}" for i in IDENTITY_SIGNALS},
    **{f"delta_{c}": f"processor count {c} grew since the card's previous transaction" for c in DELTA_SIGNALS},
}
SIGNAL_FEATURES: tuple[str, ...] = (*(f"sig_{s}" for s in PROVIDER_SIGNALS), *(f"delta_{s}" for s in DELTA_SIGNALS))


def signal_values(signals: dict | None) -> list[float]:
    """The served signals of one event, in ``PROVIDER_SIGNALS`` order (missing -> -1)."""
    if not signals:
        return [_MISSING] * len(PROVIDER_SIGNALS)
    out = list(map(signals.get, PROVIDER_SIGNALS, _MISSINGS))  # C-level lookups, no frame per name
    # the contract's signals are finite floats: taken as they are (what _value would return). A
    # finite sum of floats means each is finite; a sum that overflows only takes the slow path.
    if set(map(type, out)) == _FLOAT and math.isfinite(sum(out)):
        return out
    return [_value(v) for v in out]


def delta_values(signals: dict | None) -> list[float] | None:
    """The event's ``DELTA_SIGNALS`` counts (missing -> -1), or None when it carries no signals:
    read once per event for both the growth features (``signal_deltas``) and the card's state
    (``remember_signals``)."""
    if not signals:
        return None
    out = list(map(signals.get, DELTA_SIGNALS, _DELTA_MISSINGS))
    # the contract's signals are finite floats: taken as they are (as in ``signal_values``)
    if set(map(type, out)) == _FLOAT and math.isfinite(sum(out)):
        return out
    return [_value(signals.get(s)) for s in DELTA_SIGNALS]


def signal_deltas(now: list[float] | None, last: dict[str, float]) -> list[float]:
    """Growth of each ``DELTA_SIGNALS`` count (``now``: ``delta_values``) since the card's previous
    value (0 when either is missing)."""
    if now is None or not last:  # every delta is 0 without a current or a previous value
        return [0.0] * len(DELTA_SIGNALS)
    out = []
    for s, cur in zip(DELTA_SIGNALS, now):
        out.append(cur - last[s] if cur != _MISSING and s in last else 0.0)
    return out


def remember_signals(now: list[float] | None, last: dict[str, float]) -> dict[str, float]:
    """The card's last known value of each ``DELTA_SIGNALS`` count after this event (``now``:
    ``delta_values``): ``last`` itself when the event changes none (a state's dict is never
    changed in place)."""
    if now is None:
        return last
    out = None
    for s, v in zip(DELTA_SIGNALS, now):
        if v != _MISSING and (last.get(s) != v or v == 0.0):  # an equal zero may differ in sign
            if out is None:
                out = dict(last)
            out[s] = v
    return last if out is None else out


def _value(v) -> float:
    if type(v) is float:  # the contract's signals: every value a float
        return v if math.isfinite(v) else _MISSING
    if v is None or isinstance(v, bool):
        return _MISSING
    try:
        x = float(v)
    except (TypeError, ValueError):
        return _MISSING
    return x if math.isfinite(x) else _MISSING
