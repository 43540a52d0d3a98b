"""Per-entity duplicate detection by event id: a resent event gets the original's answer.

Producers retry: the same business event (same ``event_id``) can arrive again at a new offset,
which the offset fence cannot see. Scoring it again would count it twice in the account's
velocity and spend, and could alert twice. So each entity remembers the outputs of its last
``DEDUPE_KEPT`` event ids; a repeat is answered with the remembered output and leaves the
state alone. It is a pure wrapper around any fold step (``stream.core.fencing``), stored in the
entity's own state, so it is fenced, replayed and expired with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

S = TypeVar("S")

DEDUPE_KEPT = 32  # event ids remembered per entity (documented in docs/reliability.md)


@dataclass(slots=True)
class Deduped(Generic[S]):
    state: S
    seen: dict[str, Any] = field(default_factory=dict)  # event id -> its output, oldest first


def codec(decode: Callable[[Any], S], encode: Callable[[S], Any]):
    """(decode, encode) of a ``Deduped`` around an entity's own codec. A blob written before
    dedupe existed (no ``state`` field) reads as the bare state with nothing seen."""

    def dec(d) -> Deduped[S]:
        if d and "state" in d and "seen" in d:
            return Deduped(decode(d["state"]), dict(d["seen"]))
        return Deduped(decode(d))

    def enc(x: Deduped[S]) -> dict:
        return {"state": encode(x.state), "seen": list(x.seen.items())}  # (id, output) pairs: JSON arrays

    return dec, enc


def once(event_id: str | None, step: Callable[[S], tuple[S, Any]]) -> Callable[[Deduped[S]], tuple[Deduped[S], tuple]]:
    """``step`` applied at most once per event id; the output is ``(output, is_repeat)``.
    Events without an id are always applied."""

    def wrapped(d: Deduped[S]):
        if event_id is not None and event_id in d.seen:
            return d, (d.seen[event_id], True)
        state, out = step(d.state)
        if event_id is None:
            return Deduped(state, d.seen), (out, False)
        seen = dict(d.seen)
        seen[event_id] = out
        while len(seen) > DEDUPE_KEPT:
            del seen[next(iter(seen))]
        return Deduped(state, seen), (out, False)

    return wrapped
