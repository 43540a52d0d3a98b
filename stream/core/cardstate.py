"""What the card features remember about a card's past: ``CardState`` and ``advance_card``.

Persisted per card id in the fenced store (``stored``/``from_stored``), so every part is bounded:
the last ``RECENT_CAP`` transactions' times and amounts, at most ``SEEN_CAP`` distinct values of
each linked field, and fixed-size running sums. ``advance_card`` returns a new state and leaves its
input unchanged, so the stream can fold it inside a fenced transaction and training can replay it.

The stored form is one positional JSON array (fields in ``CardState`` order) and the recent
transactions two flat lists (times, amounts), not a keyed object with a ``[ts, amount]`` list per
transaction: every batch loads and saves the state of each card it touches, and the keys and the
small lists were most of what there was to parse and print. States stored as the older keyed
object still load; a worker older than this form cannot read it (see ``from_stored``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import compress

from stream.core.cardevent import CardEvent
from stream.core.cardsignals import delta_values, remember_signals

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
RECENT_CAP = 48  # (ts, amount) pairs kept: velocity counts saturate at this many per 7 days
SEEN_CAP = 8  # distinct e-mails / devices / products / regions / card variants remembered per card


@dataclass(slots=True)
class CardState:
    """What the card features need to know about a card's past (JSON-able, capped)."""

    n: int = 0
    last_ts: int | None = None
    last_amount: float | None = None
    log_sum: float = 0.0
    log_sq: float = 0.0
    recent_ts: list[int] = field(default_factory=list)  # times (ms) of the last transactions, newest last
    recent_amounts: list[float] = field(default_factory=list)  # their amounts, same order
    emails: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    first_ts: int | None = None
    variants: list[str] = field(default_factory=list)  # card sub-group/country/type combinations
    signals: dict[str, float] = field(default_factory=dict)  # last value of each DELTA_SIGNALS count

    def stored(self) -> list:
        """The stored form: the fields in declaration order, as one JSON array."""
        return [
            self.n,
            self.last_ts,
            self.last_amount,
            self.log_sum,
            self.log_sq,
            self.recent_ts,
            self.recent_amounts,
            self.emails,
            self.devices,
            self.products,
            self.regions,
            self.first_ts,
            self.variants,
            self.signals,
        ]

    @classmethod
    def from_stored(cls, d: list | dict | None) -> CardState:
        """A state as ``stored`` wrote it, or as the keyed object written before (``recent`` as
        ``[ts, amount]`` pairs; also without ``first_ts``/``variants``/``signals``, older still).

        Takes the decoded lists as they are, without copies: a state is never changed in place
        (``advance_card`` builds new lists), and each load decodes a fresh value. A worker from
        before the positional form reads ``d["n"]`` of an array and fails the batch: roll back
        only with the state rebuilt (``finstream rebuild``) or the card keys expired."""
        if not d:
            return cls()
        if isinstance(d, list):
            return cls(*d)
        recent = d["recent"]
        return cls(
            d["n"],
            d["last_ts"],
            d["last_amount"],
            d["log_sum"],
            d["log_sq"],
            [r[0] for r in recent],
            [r[1] for r in recent],
            d["emails"],
            d["devices"],
            d["products"],
            d["regions"],
            d.get("first_ts"),
            d.get("variants", []),
            d.get("signals", {}),
        )


def normal_email(e: CardEvent) -> str | None:
    return e.email_domain.lower() if e.email_domain else None


def normal_product(e: CardEvent) -> str | None:
    return e.product_code.upper() if e.product_code else None


def _remember(values: list[str], v: str | None) -> list[str]:
    """``values`` with ``v`` moved (or added) last, at most ``SEEN_CAP``. The input list itself
    when nothing changes (``v`` missing or already the last one: a card's usual case), which is
    safe because no state list is ever changed in place."""
    if v is None or (values and values[-1] == v):
        return values
    return ([x for x in values if x != v] + [v])[-SEEN_CAP:]


def linked_values(e: CardEvent) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """The event's linked fields as a card remembers them (e-mail, device, product, billing
    region, card variant), normalised once per event: the history features read them against the
    state and ``advance_card`` adds them to it (``stream.core.cardrisk.card_step``)."""
    return normal_email(e), e.device, normal_product(e), e.billing_region, e.variant()


def advance_card(st: CardState, e: CardEvent) -> CardState:
    """The card's state after one transaction (a new object; the input is left unchanged)."""
    return advance_known(st, e, math.log1p(e.amount), linked_values(e), delta_values(e.signals))


def advance_known(st: CardState, e: CardEvent, log_amount: float, linked: tuple, now: list[float] | None) -> CardState:
    """``advance_card`` given what the history features computed from the event too (its log
    amount, ``linked_values``, ``delta_values``): the stream's step reads each once per event.

    Built positionally (field order of ``CardState``): keyword arguments cost a visible share of
    this function, which runs once per transaction."""
    ts, amount = e.ts, e.amount
    since = ts - WEEK_MS
    times, amounts = st.recent_ts, st.recent_amounts
    if times and min(times) < since:  # some fell out of the week: keep the others, in order
        kept = [t >= since for t in times]
        times, amounts = list(compress(times, kept)), list(compress(amounts, kept))
    times, amounts = [*times, ts], [*amounts, amount]  # new lists: the input state is left as it was
    if len(times) > RECENT_CAP:
        times, amounts = times[-RECENT_CAP:], amounts[-RECENT_CAP:]
    last_ts, first_ts = st.last_ts, st.first_ts
    first = first_ts if first_ts is not None else (last_ts if last_ts is not None else ts)
    email, device, product, region, variant = linked
    return CardState(
        st.n + 1,
        ts if last_ts is None else max(last_ts, ts),
        amount,
        st.log_sum + log_amount,
        st.log_sq + log_amount * log_amount,
        times,
        amounts,
        _remember(st.emails, email),
        _remember(st.devices, device),
        _remember(st.products, product),
        _remember(st.regions, region),
        min(first, ts),
        _remember(st.variants, variant),
        remember_signals(now, st.signals),
    )
